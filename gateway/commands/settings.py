"""The account's settings (`GET`/`PUT /v1/settings`): read receipts, and who may add the user
to groups."""

from __future__ import annotations

from typing import Any, cast, get_args

from gateway.errors import invalid
from gateway.services import Services
from storage.protocols import Device, GroupAdds

GROUP_ADDS: tuple[str, ...] = get_args(GroupAdds)  # everyone, friends, nobody


async def account_settings(services: Services, caller: Device) -> dict[str, Any]:
    stores = services.stores
    return {
        "read_receipts": await stores.reads.shares_receipts(caller.user_id),
        "group_adds": await stores.friends.group_adds(caller.user_id),
    }


async def change_settings(services: Services, caller: Device, body: dict[str, Any]) -> None:
    """Change some of the caller's settings: `read_receipts` (true or false: share how far
    the caller has read), `group_adds` (who may add the caller to groups: `everyone`,
    `friends` or `nobody`). At least one of them and nothing else, each valid, or nothing is
    changed."""
    shared, adds = body.get("read_receipts"), body.get("group_adds")
    if (
        not body
        or set(body) - {"read_receipts", "group_adds"}
        or ("read_receipts" in body and not isinstance(shared, bool))
        or ("group_adds" in body and adds not in GROUP_ADDS)
    ):
        raise invalid(
            'the body must hold "read_receipts": true|false and/or'
            ' "group_adds": "everyone"|"friends"|"nobody", nothing else'
        )
    if isinstance(shared, bool):
        await services.stores.reads.share_receipts(caller.user_id, shared)
    if adds is not None:
        await services.stores.friends.set_group_adds(caller.user_id, cast(GroupAdds, adds))
