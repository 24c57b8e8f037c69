"""Presence: who may watch whom, and what they see (SPEC §5).

A request names up to `max_presence_subscriptions` users; each must be a friend (sharing a
channel is not enough: anyone can open a direct channel with anyone), otherwise the whole
request is refused and reveals nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.errors import ApiError, invalid, require_id
from gateway.presence import Watcher, presence_body
from gateway.services import Services
from schemas.ids import iso_ms
from storage.protocols import Device


async def authorize(services: Services, caller: Device, others: Sequence[str]) -> list[str]:
    """The users the caller asked to watch, if every one of them may be watched."""
    wanted = list(dict.fromkeys(require_id(u, "user_ids[]") for u in others))
    limit = services.settings.max_presence_subscriptions
    if len(wanted) > limit:
        raise invalid(f"at most {limit} users at a time")
    me = caller.user_id
    visible = await services.stores.friends.visible_to(me, [u for u in wanted if u != me])
    if any(u != me and u not in visible for u in wanted):
        raise ApiError(403, "not_member", "you may watch only your friends")
    return wanted


async def snapshot(services: Services, user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each user's presence now (offline with no last activity if never seen)."""
    known = await services.stores.presence.get(user_ids)
    out = []
    for user_id in user_ids:
        p = known.get(user_id)
        if p is None:
            out.append(presence_body(user_id, "offline", None))
        else:
            out.append(presence_body(user_id, p.status, iso_ms(p.last_active_ms)))
    return out


async def watch(
    services: Services, caller: Device, watcher: Watcher, user_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Replace the watcher's subscriptions with `user_ids`; returns their presence now, then
    the watcher is told of every change."""
    allowed = await authorize(services, caller, user_ids)
    # Follow first, then read: a change between the two is not missed (gateway/presence.py).
    await services.presence.subscribe(watcher, allowed)
    return await snapshot(services, allowed)


async def look_up(
    services: Services, caller: Device, user_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The presence now of users the caller may watch."""
    if not user_ids:
        raise invalid("user_ids is required: a comma-separated list")
    return await snapshot(services, await authorize(services, caller, user_ids))
