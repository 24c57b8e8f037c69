"""Friends: requests, acceptance, removal, and the friend list with presence."""

from __future__ import annotations

from typing import Any

from gateway.errors import invalid, not_found
from gateway.presence import snapshot
from gateway.publisher import Publisher
from storage.protocols import FriendState, FriendStore, PresenceStore, UnknownUsers


async def befriend(friends: FriendStore, user_id: str, other_id: str) -> FriendState:
    """Send a friend request, or accept the one `other_id` sent."""
    if other_id == user_id:
        raise invalid("you cannot befriend yourself")
    try:
        return await friends.request_or_accept(user_id, other_id)
    except UnknownUsers:
        raise not_found("user") from None


async def unfriend(
    friends: FriendStore,
    publisher: Publisher,
    accounts_exist: bool,
    user_id: str,
    other_id: str,
) -> None:
    """Remove a friend, cancel a request, or decline one. Idempotent for existing users.
    Sockets of either user watching the other lose that subscription, unless the two still
    share a channel."""
    if other_id == user_id:
        raise invalid("you cannot unfriend yourself")
    if not accounts_exist:
        raise not_found("user")
    if await friends.remove(user_id, other_id):
        await publisher.presence_access_changed({user_id: [other_id], other_id: [user_id]})


async def friend_list(
    friends: FriendStore, presence: PresenceStore, user_id: str
) -> list[dict[str, Any]]:
    """Everyone with a friendship or request, with presence for friends."""
    edges = await friends.list(user_id)
    now = {
        p["user_id"]: p
        for p in await snapshot(presence, [e.user_id for e in edges if e.state == "friend"])
    }
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
