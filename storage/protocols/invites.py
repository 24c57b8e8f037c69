"""Invite links to groups: made by a group's owners and admins, used by whoever holds one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Invite:
    """An invite link as its group's managers see it. The code itself is never stored: only
    its hash, and its first characters to tell links apart."""

    invite_id: str
    code_prefix: str
    channel_id: str
    created_by: str
    created_at_ms: int
    expires_at_ms: int | None  # None: never
    max_uses: int | None  # None: no limit
    uses: int
    usable: bool  # not expired, not used up, and its maker still an owner or admin


@dataclass(frozen=True)
class InviteTarget:
    """The group a usable link leads to, as its holder may see it before joining."""

    invite: Invite
    name: str
    member_count: int
    managers: list[str]  # the group's owners and admins now


@dataclass(frozen=True)
class Joined:
    channel_id: str
    members: list[str]  # after the join
    added: bool  # False: the user was a member already (the link was not used)


class InviteStore(Protocol):
    async def create(
        self,
        invite_id: str,
        code_hash: bytes,
        code_prefix: str,
        channel_id: str,
        created_by: str,
        expires_at_ms: int | None,
        max_uses: int | None,
        max_usable: int,
    ) -> Invite:
        """A new link to the group. Links of the group that can no longer be used are forgotten
        first; raises `TooManyInvites` if `max_usable` usable ones remain, `NotAGroup`."""

    async def invites(self, channel_id: str) -> list[Invite]:
        """The group's links, oldest first."""

    async def revoke(self, channel_id: str, invite_id: str) -> bool:
        """Forget the group's link `invite_id`; False if it has no such link."""

    async def target(self, code_hash: bytes) -> InviteTarget | None:
        """The group of the link with this code hash, if the link is usable now."""

    async def join(self, code_hash: bytes, user_id: str, max_members: int) -> Joined:
        """Add `user_id` to the link's group and count the use, in one transaction serialised
        with the group's other membership changes, so a link is never used more than its
        `max_uses` and a group never grows past `max_members`. A member already is left as
        they are and the use is not counted. Raises `InviteUnusable` (no such usable link),
        `GroupFull`."""
