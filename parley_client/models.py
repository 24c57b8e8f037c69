"""What the protocol carries, typed: the JSON objects of the HTTP API and the server's
WebSocket frames as TypedDicts (they stay the dicts that were decoded, so they compare and
serialise as they came), and the values this library makes as dataclasses. docs/protocol.md
describes every field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict

Frame = dict[str, Any]
"""A frame as decoded from the socket: any of the server frames below, or one this version of
the library does not know yet."""

Status = Literal["online", "offline"]
FriendStatus = Literal["friend", "requested", "pending"]
ChannelType = Literal["direct", "group"]


class Authenticated(Protocol):
    """Anything that holds a device token: a `Login`, or an application's own user record."""

    @property
    def token(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Account:
    """`POST /v1/users`."""

    user_id: str
    username: str


@dataclass(frozen=True, slots=True)
class Login:
    """`POST /v1/sessions`: one device of a user, with its own token."""

    user_id: str
    device_id: str
    token: str = field(repr=False)
    username: str


class Quote(TypedDict):
    """What a reply shows of the message it answers, as that message is now: its sender and
    the start of its text (200 characters at most), or `deleted` and no text."""

    sender_id: str
    text: str
    deleted: NotRequired[bool]


class Message(TypedDict):
    """A message, in history (`GET /v1/channels/{id}/messages`) and in `message` frames. Ids
    are decimal strings: compare `message_id`s as integers."""

    channel_id: str
    message_id: str
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str
    sent_at: str
    edited_at: NotRequired[str]  # edited: when, last (`text` is the newest)
    deleted: NotRequired[bool]  # a tombstone: `text` is empty
    reactions: NotRequired[dict[str, list[str]]]  # emoji -> who reacted
    reply_to: NotRequired[str]  # a reply: the message of the channel it answers
    reply_count: NotRequired[int]  # how many messages answer this one (its thread)
    quote: NotRequired[Quote]  # a reply: what it shows of `reply_to`, when you may see it
    pinned_by: NotRequired[str]  # pinned, by whom
    pinned_at: NotRequired[str]  # pinned, when
    mentions: NotRequired[list[str]]  # the members its `@username`s name, as user ids


class MessageFrame(Message):
    type: Literal["message"]


class ChangeFrame(TypedDict):
    """An `edit`, `delete`, `reaction`, `pin` or `unpin` frame: a change with its own id in the
    channel's order, to the message `target_id`. Apply it to that message, in order."""

    type: Literal["edit", "delete", "reaction", "pin", "unpin"]
    channel_id: str
    message_id: str
    target_id: str
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str  # an edit's new text
    sent_at: str
    emoji: NotRequired[str]  # a reaction
    removed: NotRequired[bool]  # a reaction taken back
    # A reaction the caps refused when it reached the channel's order: stored as taken back.
    refused: NotRequired[Literal["message_limit", "user_limit", "pin_limit"]]


class UserCard(TypedDict):
    """A profile: `GET /v1/users?username=`, `GET /v1/users/{id}`, `GET /v1/users?ids=`."""

    user_id: str
    username: str
    display_name: str | None


ReportReason = Literal["spam", "harassment", "hate", "violence", "illegal", "other"]


class Report(TypedDict):
    """A report of a message: `POST /v1/channels/{id}/messages/{mid}/reports`, the items of
    `GET /v1/channels/{id}/reports` (without `reporter_id` and `text`) and of
    `GET /v1/admin/reports`."""

    report_id: str
    channel_id: str
    message_id: str
    sender_id: str
    reason: ReportReason
    note: str | None
    created_at: str
    # To the reporter and the operator only: who reported, and the text as it was reported.
    reporter_id: NotRequired[str]
    text: NotRequired[str]


@dataclass(frozen=True, slots=True)
class Operator:
    """The operator, for the admin API's calls: the gateway's `PARLEY_ADMIN_TOKEN`."""

    token: str


Level = Literal["all", "mentions", "none"]


class ChannelNotifications(TypedDict):
    """The caller's notification settings for a channel, in `GET /v1/channels`: `level` all
    (every message notifies), mentions (only those that mention you) or none (no push at
    all); `muted_until` an ISO 8601 time until which only mentions notify, or None."""

    level: Level
    muted_until: str | None
    version: int  # counts the changes: of two views of them, the higher is the newer


class NotificationsFrame(ChannelNotifications):
    """`notifications`: the settings changed, on this or another device of the user; also the
    answer of `Client.set_notifications`."""

    type: NotRequired[Literal["notifications"]]  # in a frame
    channel_id: str


class Channel(TypedDict):
    """`POST /v1/channels` and each item of `GET /v1/channels`."""

    channel_id: str
    type: ChannelType
    members: list[str]
    last_message_id: str | None
    history_visible: bool  # members who join later see the past (always, in a direct channel)
    name: NotRequired[str]  # groups only
    read_message_id: NotRequired[str | None]  # the caller's read marker (`GET /v1/channels`)
    unread_count: NotRequired[int]  # messages from others after it, counted up to 100
    mention_count: NotRequired[int]  # of those, the ones that mention the caller
    notifications: NotRequired[ChannelNotifications]  # the caller's settings (`GET /v1/channels`)


class SearchChannel(TypedDict):
    """The channel of a search result: `name` is None for direct channels (and `type` and
    `name` are None for a channel that no longer exists)."""

    channel_id: str
    type: ChannelType | None
    name: str | None


class SnippetPart(TypedDict):
    """A piece of a result's snippet: plain text (never markup), a match of the query where
    `match` is true. A part `…` that is no match marks text cut off at either end."""

    text: str
    match: bool


class SearchResult(TypedDict):
    """Each item of `GET /v1/search`'s `results`."""

    message: Message
    channel: SearchChannel
    snippet: list[SnippetPart]


class SearchResults(TypedDict):
    """`GET /v1/search`: matches newest first; pass `next_before` as `before` for the next page
    (None: there is no more)."""

    results: list[SearchResult]
    next_before: str | None


class Receipt(TypedDict):
    """Each item of `GET /v1/channels/{id}/receipts` and of a `receipts` frame's `reads`."""

    user_id: str
    message_id: str


class PresenceState(TypedDict):
    status: Status
    last_active_at: str | None  # None: never seen


class Presence(PresenceState):
    """Each item of `GET /v1/presence`, and the body of a `presence` frame."""

    user_id: str


class PresenceFrame(Presence):
    type: Literal["presence"]


class Friend(TypedDict):
    """Each item of `GET /v1/friends`; only friends carry `presence`."""

    user_id: str
    username: str
    display_name: str | None
    status: FriendStatus
    presence: NotRequired[PresenceState]


class FriendRequest(TypedDict):
    """`PUT /v1/friends/{user_id}`: `requested` (asked) or `friend` (accepted)."""

    user_id: str
    status: FriendStatus


class PushEndpoint(TypedDict):
    """`PUT /v1/push/endpoints/current` and each item of `GET /v1/push/endpoints`."""

    device_id: str
    platform: str
    token: str


class ErrorFrame(TypedDict):
    """An `error` frame; `ref` echoes the frame's `client_msg_id` when it had one."""

    type: Literal["error"]
    code: str
    message: str
    ref: NotRequired[str]


class AcceptedFrame(TypedDict):
    """The send is durably in the log and will be delivered."""

    type: Literal["accepted"]
    client_msg_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class Welcome:
    """The `welcome` frame: who the token belongs to, and how often to heartbeat."""

    user_id: str
    device_id: str
    heartbeat_interval_s: float
