"""Push endpoints: each device registers where a push provider reaches it."""

from __future__ import annotations

from typing import Any

from gateway.errors import require_body
from gateway.services import Services
from schemas.http import PushEndpointBody
from storage.protocols import Device, PushEndpoint


async def register_endpoint(
    services: Services, caller: Device, body: dict[str, Any]
) -> PushEndpoint:
    """Register or replace the device's endpoint: a platform name (e.g. `apns`, `fcm`,
    `webpush`) and the handle that platform gave the device (`PushEndpointBody`)."""
    wanted = require_body(PushEndpointBody, body)
    endpoint = PushEndpoint(caller.user_id, caller.device_id, wanted.platform, wanted.token)
    await services.stores.push.set_endpoint(endpoint)
    return endpoint


async def remove_endpoint(services: Services, caller: Device) -> None:
    """Stop pushing to the device (idempotent)."""
    await services.stores.push.remove_endpoint(caller.device_id)


async def list_endpoints(services: Services, caller: Device) -> list[PushEndpoint]:
    """The endpoints of every device of the caller's account."""
    found = await services.stores.push.endpoints([caller.user_id])
    return found.get(caller.user_id, [])


def endpoint_body(endpoint: PushEndpoint) -> dict[str, Any]:
    return {
        "device_id": endpoint.device_id,
        "platform": endpoint.platform,
        "token": endpoint.token,
    }
