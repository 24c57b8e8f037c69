"""Channels, direct and group: their members, roles and settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["owner", "admin", "member"]
Level = Literal["all", "mentions", "none"]


@dataclass(frozen=True, slots=True)
class Notifications:
    """A member's notification settings for a channel: `level` `all` (every message),
    `mentions` (only messages that mention them) or `none` (no push at all); `muted_until_ms`
    (epoch ms, or None): until then only mentions notify, whatever the level."""

    level: Level = "all"
    muted_until_ms: int | None = None
    # How many times the member changed them: of two views of them, the higher is the newer.
    version: int = 0

    def notifies(self, mentioned: bool, at_ms: int) -> bool:
        """Whether a message (mentioning the member or not) at `at_ms` pushes and badges."""
        if self.level == "none":
            return False
        muted = self.muted_until_ms is not None and self.muted_until_ms > at_ms
        return mentioned or (self.level == "all" and not muted)


DEFAULT_NOTIFICATIONS = Notifications()


@dataclass(frozen=True)
class Channel:
    channel_id: str
    type: Literal["direct", "group"]
    name: str | None
    members: list[str]
    # In a group, the members who are not plain members: user id -> "owner" or "admin".
    roles: dict[str, Role] = field(default_factory=dict)
    # Whether members who join later see the past (always, in a direct channel): see
    # `storage/visibility.py`.
    history_visible: bool = True


@dataclass(frozen=True, slots=True)  # slots: gateways cache many (gateway/memberships.py)
class Membership:
    channel_id: str
    joined_at_ms: int
    role: Role = "member"  # in a direct channel, always "member"
    blocked: bool = False  # a direct channel whose two members have a block between them
    history_visible: bool = True  # the channel's setting now (storage/visibility.py)
    notifications: Notifications = DEFAULT_NOTIFICATIONS  # the member's own settings


class ChannelStore(Protocol):
    async def get_or_create_direct(self, channel_id: str, a: str, b: str) -> tuple[Channel, bool]:
        """The one direct channel of the pair, created with `channel_id` if missing; bool = created."""

    async def create_group(
        self,
        channel_id: str,
        name: str,
        member_ids: Sequence[str],
        max_members: int,
        history_visible: bool = True,
    ) -> Channel:
        """Create a group whose first member is its owner; raises `GroupFull` above
        `max_members`, `UnknownUsers` for bad ids."""

    async def channel(self, channel_id: str) -> Channel | None:
        """A channel with its members."""

    async def membership(self, channel_id: str, user_id: str) -> Membership | None:
        """The user's membership of the channel, if a member (with, for a direct channel,
        whether a block stands between its two members)."""

    async def memberships(self, user_id: str) -> list[Membership]:
        """Every channel the user belongs to."""

    async def members_of(self, channel_ids: Sequence[str]) -> dict[str, dict[str, Membership]]:
        """The members of several channels, each with their membership: channel id -> user id
        -> membership (missing channels are absent)."""

    async def channels_of(self, user_id: str) -> list[Channel]:
        """The user's channels with their members."""

    async def members(self, channel_ids: Sequence[str]) -> dict[str, list[str]]:
        """Member lists for several channels (missing channels are absent)."""

    async def mentionable(self, asks: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """For each (sender id, username) asked, the id of the user with that username, unless
        a block stands between them and the sender (either way): who a mention of the name by
        the sender names (absent: nobody). One statement for every ask."""

    async def set_notifications(
        self, channel_id: str, user_id: str, notifications: Notifications
    ) -> Notifications | None:
        """Set the member's notification settings for the channel (its `version` is ignored);
        returns them as stored, with their new version, one above the last. None, with
        nothing written, if the user is not a member when the write is made."""

    async def notifications(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Notifications]:
        """The notification settings of these (user, channel) pairs, for the members among
        them (one statement)."""

    async def blocked_direct(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of the channels that are direct channels with a block between their two
        members (either way)."""

    async def add_member(self, channel_id: str, user_id: str, max_members: int) -> list[str]:
        """Add a member to a group; returns the members after. Raises GroupFull / NotAGroup / UnknownUsers."""

    async def remove_member(self, channel_id: str, user_id: str) -> list[str]:
        """Remove a member from a group; returns the members after. Raises NotAGroup. A group
        keeps an owner: when its last owner goes, the longest-standing admin (or else member)
        becomes owner in the same transaction."""

    async def hide(self, channel_id: str, user_id: str, upto: int) -> None:
        """Hide a channel from the member's list until a message newer than `upto`."""

    async def hidden(self, user_id: str) -> dict[str, int]:
        """The channels the user hid, each with the newest message id it was hidden at."""

    async def set_role(self, channel_id: str, user_id: str, role: Role) -> None:
        """Set a member's role in a group. Raises NotAGroup, `NotAMember` if `user_id` is not
        in it, and `LastOwner` if that would leave the group without an owner."""

    async def set_history_visible(self, channel_id: str, visible: bool) -> Channel:
        """Whether the group's past is visible to members who join later; returns the group
        after. Raises NotAGroup."""
