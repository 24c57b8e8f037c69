"""The account's settings (`GET`/`PUT /v1/settings`): read receipts, and who may add the user
to groups."""

from __future__ import annotations

from typing import Any

from gateway.errors import require_body
from gateway.services import Services
from schemas.http import AccountSettings
from storage.protocols import Device


async def account_settings(services: Services, caller: Device) -> dict[str, Any]:
    stores = services.stores
    return {
        "read_receipts": await stores.reads.shares_receipts(caller.user_id),
        "group_adds": await stores.friends.group_adds(caller.user_id),
    }


async def change_settings(services: Services, caller: Device, body: dict[str, Any]) -> None:
    """Change some of the caller's settings: `read_receipts` (true or false: share how far
    the caller has read), `group_adds` (who may add the caller to groups: `everyone`,
    `friends` or `nobody`). At least one of them and nothing else, each valid
    (`AccountSettings`), or nothing is changed; the others stay as they are."""
    wanted = require_body(AccountSettings, body)
    if wanted.read_receipts is not None:
        await services.stores.reads.share_receipts(caller.user_id, wanted.read_receipts)
    if wanted.group_adds is not None:
        await services.stores.friends.set_group_adds(caller.user_id, wanted.group_adds)
