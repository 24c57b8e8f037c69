"""Friendships and who may add a user to groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

FriendState = Literal["friend", "requested", "pending"]
GroupAdds = Literal["everyone", "friends", "nobody"]  # who may add a user to groups


@dataclass(frozen=True)
class FriendEdge:
    user_id: str
    username: str
    display_name: str | None
    state: FriendState


class FriendStore(Protocol):
    async def request_or_accept(self, user_id: str, other_id: str) -> FriendState:
        """`user_id` asks `other_id` to be friends, or accepts their request; returns the state
        from `user_id`'s side afterwards (`requested` or `friend`). Idempotent. Raises
        `Blocked` if either blocks the other."""

    async def remove(self, user_id: str, other_id: str) -> bool:
        """Unfriend, cancel or decline; False when there was nothing to remove."""

    async def list(self, user_id: str) -> list[FriendEdge]:
        """Everyone `user_id` is friends with or has a request with."""

    async def visible_to(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of `others` whose presence `user_id` may see: friends (a block ends a
        friendship, so no blocked pair is among them)."""

    async def block(self, user_id: str, other_id: str) -> bool:
        """`user_id` blocks `other_id`, ending any friendship or request between them; True if
        a friendship or request ended. Idempotent; raises `UnknownUsers`."""

    async def unblock(self, user_id: str, other_id: str) -> None:
        """Lift `user_id`'s block of `other_id` (idempotent)."""

    async def blocked(self, user_id: str) -> Sequence[str]:
        """Whom `user_id` blocks, oldest first."""

    async def blocked_between(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of `others` with a block between them and `user_id`, either way."""

    async def group_adds(self, user_id: str) -> GroupAdds:
        """Who may add the user to groups (`friends` unless the user chose otherwise)."""

    async def set_group_adds(self, user_id: str, who: GroupAdds) -> None:
        """Set who may add the user to groups."""

    async def refusing_adds(self, user_id: str, others: Sequence[str]) -> dict[str, GroupAdds]:
        """Those of `others` who do not let `user_id` add them to groups, each with their
        setting: `nobody`, or `friends` when `user_id` is not their friend. In one statement."""
