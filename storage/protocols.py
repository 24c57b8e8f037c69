"""The storage contracts. Every backend passes the same contract tests (tests/test_storage_contract.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from schemas.message import Message

Role = Literal["owner", "admin", "member"]
SendKey = tuple[str, str]  # (sender_device_id, client_msg_id): a send's idempotency key


class StorageError(Exception):
    """Base of the storage errors that callers handle."""


class UsernameTaken(StorageError):
    pass


class GroupFull(StorageError):
    pass


class NotAMember(StorageError):
    pass


class Blocked(StorageError):
    """A block between the two users forbids it."""


class LastOwner(StorageError):
    """The change would leave a group without an owner."""


class NotAGroup(StorageError):
    pass


class UnknownUsers(StorageError):
    def __init__(self, user_ids: Sequence[str]) -> None:
        super().__init__(f"unknown users: {', '.join(user_ids)}")
        self.user_ids = list(user_ids)


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    display_name: str | None
    password_hash: str


@dataclass(frozen=True, slots=True)
class Profile:
    """What other users see of an account."""

    user_id: str
    username: str
    display_name: str | None


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    user_id: str
    name: str | None
    created_at_ms: int
    expires_at_ms: int = 0  # when its token stops working (0: not read)


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


class AccountStore(Protocol):
    async def create_user(
        self, user_id: str, username: str, password_hash: str, display_name: str | None
    ) -> None:
        """Create a user; raises `UsernameTaken` if the name is in use."""

    async def user_by_username(self, username: str) -> User | None:
        """The user with this username, if any."""

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """The subset of `user_ids` that are accounts."""

    async def visible_profiles(self, viewer_id: str, user_ids: Sequence[str]) -> list[Profile]:
        """The profiles among `user_ids` that `viewer_id` may see, in no order: their own, a
        co-member's of a group, and, unless a block stands between the two, a friend's (or
        a friend request's either way) or the other member's of a direct channel."""

    async def set_display_name(self, user_id: str, display_name: str | None) -> Profile | None:
        """Set (or clear, with None) the user's display name; their profile, None if no user."""

    async def create_device(
        self,
        device_id: str,
        user_id: str,
        name: str | None,
        token_hash: bytes,
        expires_at_ms: int,
        max_devices: int,
    ) -> tuple[Device, list[str]]:
        """Register a new device (one login) with its token's hash. If the user already has
        `max_devices` live ones, the soonest to expire (least recently logged in or renewed)
        are revoked to make room, atomically; returns the device and the ids revoked."""

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """The live device holding this token: not revoked, not expired."""

    async def live_device(self, device_id: str) -> Device | None:
        """The device if live (not revoked, not expired), with its current expiry."""

    async def devices(self, user_id: str) -> list[Device]:
        """The user's devices not revoked, expired ones included, oldest first."""

    async def renew_token(self, device_id: str, token_hash: bytes, expires_at_ms: int) -> bool:
        """Give a live device a new token (the old one stops working); False if not live."""

    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token; idempotent."""

    async def revoke_devices(self, user_id: str) -> list[str]:
        """Revoke every live device of the user; the ids revoked."""


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


FriendState = Literal["friend", "requested", "pending"]
GroupAdds = Literal["everyone", "friends", "nobody"]  # who may add a user to groups


@dataclass(frozen=True)
class FriendEdge:
    user_id: str
    username: str
    display_name: str | None
    state: FriendState


@dataclass(frozen=True)
class Presence:
    user_id: str
    status: Literal["online", "offline"]
    last_active_ms: int
    connected: bool = False  # a socket is open (status waits out the timeout, this does not)


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


class PresenceStore(Protocol):
    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        """The last decided presence of each user that has one."""

    async def save(self, changes: Sequence[tuple[Presence, int]]) -> None:
        """Record presence changes, each with the user's presence partition."""

    async def online_in(self, partitions: Sequence[int]) -> list[Presence]:
        """Users recorded online whose presence partition is one of `partitions`."""


@dataclass(frozen=True)
class PushEndpoint:
    """Where a push provider reaches one device: a platform name and that platform's handle."""

    user_id: str
    device_id: str
    platform: str
    token: str


@dataclass(frozen=True)
class PushCandidate:
    """A message a user with no open socket was not connected to receive."""

    user_id: str
    channel_id: str
    message_id: int
    active_floor: int  # the lowest message id of the instant the user was last active


class PushStore(Protocol):
    async def set_endpoint(self, endpoint: PushEndpoint) -> None:
        """Register or replace the device's endpoint."""

    async def remove_endpoint(self, device_id: str) -> bool:
        """Forget the device's endpoint; False when it had none."""

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, list[PushEndpoint]]:
        """The endpoints of the users' live (not revoked) devices, for users that have any."""

    async def claim(
        self, candidates: Sequence[PushCandidate], window_ms: int
    ) -> list[PushCandidate]:
        """The candidates that get a push; at most one per (user, channel) in a call.

        A candidate is claimed when its channel has no claim for the user yet, or the last
        claim is older than the candidate and either `window_ms` older or older than the user's
        last activity. A message is claimed once, whoever asks and however often; its claim is
        returned again, for the same push to be sent again, until it is `finish`ed."""

    async def finish(self, claims: Sequence[PushCandidate]) -> None:
        """Mark claims done: their pushes were delivered or given up on."""


class CursorStore(Protocol):
    async def cursors(self, device_id: str) -> dict[str, int]:
        """The device's acknowledged message id per channel."""

    async def advance(self, device_id: str, channel_id: str, message_id: int) -> None:
        """Move the device's cursor forward to `message_id`; never backwards, and only while
        the device's user is a member of the channel (otherwise nothing is written)."""


@dataclass(frozen=True, slots=True)
class MarkerMove:
    moved: bool  # the marker went forward (False: it was there or further already)
    shared: bool  # the user shares read receipts


class ReadStore(Protocol):
    async def markers(self, user_id: str) -> dict[str, int]:
        """The user's read marker per channel (channels never read are absent)."""

    async def advance(self, user_id: str, channel_id: str, message_id: int) -> MarkerMove | None:
        """Move the user's marker in the channel forward to `message_id` (never back), in O(1)
        writes; says whether it moved and whether the user shares receipts. None, with nothing
        written, if the user is not a member of the channel when the write is made."""

    async def receipts(self, channel_id: str) -> dict[str, int]:
        """The markers of the channel's members who share them."""

    async def read_upto(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The markers of these (user, channel) pairs, for those that have one."""

    async def shares_receipts(self, user_id: str) -> bool:
        """Whether the user shares read receipts (on unless turned off)."""

    async def share_receipts(self, user_id: str, shared: bool) -> None:
        """Turn the user's read receipts on or off."""


class MessageStore(Protocol):
    async def insert(self, messages: Sequence[Message]) -> None:
        """Persist a channel's rows (messages, and changes to messages). Idempotent: a row
        already stored under its id, or a send whose idempotency key is already stored, is left
        as it is.

        A change row also changes its message: an edit sets its text and `edited_at` (the
        newest edit wins; none once deleted), a delete leaves a tombstone (the texts of the
        message and of its edits are removed), a reaction adds or takes back one (user, emoji)
        (the newest wins). However often and in whatever order changes are applied, the
        message ends in the state their id order gives."""

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        """`insert` for rows whose send keys are believed new (the pipeline's common case, in
        one round trip where the backend allows): True once they are stored; False, with
        nothing of the call stored, if any send key was stored already (the caller then asks
        `find_sent`, as for a repeat)."""

    async def get(self, channel_id: str, message_id: int) -> Message | None:
        """One row in its latest state, if it is stored."""

    async def deleted_rows(self, channel_id: str, message_id: int) -> list[Message]:
        """A deleted message's rows as stored, in id order: the message and its edits, their
        texts blank (the copies that replace them in the stored topic's log). Empty unless the
        message is stored deleted."""

    async def find_sent(self, keys: Sequence[SendKey]) -> dict[SendKey, Message]:
        """Messages already stored for these idempotency keys."""

    async def last_message_ids(self, channel_ids: Sequence[str]) -> dict[str, int]:
        """The newest message id of each channel that has messages."""

    async def unread_counts(
        self, after: Mapping[str, int], *, not_from: str, cap: int
    ) -> dict[str, int]:
        """For each channel of `after`, how many of its messages (not changes, not deleted)
        above its id there were not sent by `not_from`, counted up to `cap`: unread counts,
        every channel in the answer. One statement however many channels, where the backend
        can (Postgres); a channel list must not cost a round trip per channel."""

    async def page(
        self,
        channel_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
        changes: bool = True,
    ) -> list[Message]:
        """Up to `limit` rows ascending by id: the newest below `before`, the oldest above
        `after`, or the newest of all when neither is given; messages only unless `changes`.
        Messages are in their latest state.

        Gap-free while inserts run: a page shows a message only once every older message of
        the channel is stored too, so paging on from a page's last id misses nothing."""

    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class SearchScope:
    """A channel a searcher may read, from `from_id` on (the first id of the instant they
    joined)."""

    channel_id: str
    from_id: int


@dataclass(frozen=True)
class SearchPage:
    """Matches newest first (by message id, then channel id). `more` when older matches may
    exist: ask again with `before` = the last message's id."""

    messages: list[Message]
    more: bool


class SearchTooCostly(StorageError):
    """The query would cost more than a search may (it ran out of time): narrow it."""


class SearchBusy(StorageError):
    """The index had no room for the search before its deadline: try again shortly."""


class SearchIndex(Protocol):
    async def add(self, messages: Sequence[Message]) -> None:
        """Index messages. Idempotent: a message indexed again (same channel and id) stays
        one entry, with the text it was indexed with last; a removed one stays removed."""

    async def edit(self, channel_id: str, message_id: int, text: str) -> None:
        """The message's text is now `text`, if the message is indexed (a removed one stays
        removed)."""

    async def remove(self, channel_id: str, message_id: int) -> None:
        """The message leaves the index for good (idempotent): a later `add` of it, such as a
        rebuild's that read it from the log before its delete, is passed over."""

    async def search(
        self,
        query: str,
        scopes: Sequence[SearchScope],
        *,
        before: int | None,
        limit: int,
        deadline: float | None = None,
    ) -> SearchPage:
        """Up to `limit` messages of the scopes holding every token of `query`
        (storage/search/tokens.py), newest first, with ids below `before` if given. A page
        never ends between two matches with the same id (in different channels), so paging on
        with `before` misses nothing. All of it by `deadline` (`time.monotonic()`; the
        backend's own budget if None): raises `SearchTooCostly` when the query runs out of
        time, `SearchBusy` when the index had no room for it in time."""

    async def clear(self) -> None:
        """Empty the index (before a rebuild)."""

    async def close(self) -> None:
        """Release connections."""
