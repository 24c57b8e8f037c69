"""Push endpoints: each device registers where a push provider reaches it."""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import invalid
from gateway.services import Services
from schemas.ids import has_control_characters
from storage.protocols import Device, PushEndpoint

PLATFORM = re.compile(r"[a-z0-9_.-]{1,32}")
MAX_TOKEN_CHARS = 4096


async def register_endpoint(
    services: Services, caller: Device, platform: object, token: object
) -> PushEndpoint:
    """Register or replace the device's endpoint: a platform name (e.g. `apns`, `fcm`,
    `webpush`) and the handle that platform gave the device."""
    if not isinstance(platform, str) or not PLATFORM.fullmatch(platform):
        raise invalid("platform must be 1-32 of [a-z0-9_.-]")
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN_CHARS:
        raise invalid(f"token must be a string of 1-{MAX_TOKEN_CHARS} characters")
    if has_control_characters(token):
        # A provider's handle is printable; a NUL is what the store would refuse (SPEC §4).
        raise invalid("token must not contain control characters")
    endpoint = PushEndpoint(caller.user_id, caller.device_id, platform, token)
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
