"""Friends: requests, acceptance, removal, and the friend list with presence."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.commands.channels import memberships_changed
from gateway.commands.presence import snapshot
from gateway.errors import blocked, invalid, not_found, require_id
from gateway.services import Services
from storage.protocols import Blocked, Device, FriendState, UnknownUsers


async def befriend(services: Services, caller: Device, other: object) -> FriendState:
    """Send a friend request, or accept the one `other` sent."""
    other_id = require_id(other, "user_id")
    if other_id == caller.user_id:
        raise invalid("you cannot befriend yourself")
    try:
        return await services.stores.friends.request_or_accept(caller.user_id, other_id)
    except UnknownUsers:
        raise not_found("user") from None
    except Blocked:
        raise blocked() from None


async def unfriend(services: Services, caller: Device, other: object) -> None:
    """Remove a friend, cancel a request, or decline one. Idempotent for existing users.
    Sockets of either user watching the other lose that subscription."""
    other_id = require_id(other, "user_id")
    if other_id == caller.user_id:
        raise invalid("you cannot unfriend yourself")
    if not await services.stores.accounts.existing_users([other_id]):
        raise not_found("user")
    if await services.stores.friends.remove(caller.user_id, other_id):
        await services.publisher.presence_access_changed(
            {caller.user_id: [other_id], other_id: [caller.user_id]}
        )


async def block(services: Services, caller: Device, other: object) -> None:
    """Block `other`: no direct channel, message, group add, friendship or presence between
    the two from then on; any friendship or request ends, and so do live presence
    subscriptions either way."""
    other_id = require_id(other, "user_id")
    if other_id == caller.user_id:
        raise invalid("you cannot block yourself")
    try:
        await services.stores.friends.block(caller.user_id, other_id)
    except UnknownUsers:
        raise not_found("user") from None
    # Published after the commit, whether or not they were friends (idempotent for watchers);
    # gateways drop the pair's cached memberships (their direct channel is written no more).
    await asyncio.gather(
        services.publisher.presence_access_changed(
            {caller.user_id: [other_id], other_id: [caller.user_id]}
        ),
        memberships_changed(services, None, [caller.user_id, other_id]),
    )


async def unblock(services: Services, caller: Device, other: object) -> None:
    """Lift a block (idempotent). Nothing else comes back: a friendship is asked for again.
    Gateways never cache a blocked membership, so the pair may write again at once; the event
    still goes out, as for every change of a membership."""
    other_id = require_id(other, "user_id")
    await services.stores.friends.unblock(caller.user_id, other_id)
    await memberships_changed(services, None, [caller.user_id, other_id])


async def blocks(services: Services, caller: Device) -> list[str]:
    """Whom the caller blocks, oldest first."""
    return list(await services.stores.friends.blocked(caller.user_id))


async def friend_list(services: Services, caller: Device) -> list[dict[str, Any]]:
    """Everyone with a friendship or request, with presence for friends."""
    edges = await services.stores.friends.list(caller.user_id)
    friends = [e.user_id for e in edges if e.state == "friend"]
    now = {p["user_id"]: p for p in await snapshot(services, friends)}
    out = []
    for edge in edges:
        body: dict[str, Any] = {
            "user_id": edge.user_id,
            "username": edge.username,
            "display_name": edge.display_name,
            "status": edge.state,
        }
        if edge.state == "friend":
            p = now[edge.user_id]
            body["presence"] = {"status": p["status"], "last_active_at": p["last_active_at"]}
        out.append(body)
    return out
