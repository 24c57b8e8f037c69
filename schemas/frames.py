"""WebSocket frames (SPEC §3): one JSON object per text frame, named by `type`.

Client frames are validated with these models. Server frames are built by the gateway as
plain dicts on the hot path; the models below document them and tests validate every frame
the gateway sends against their JSON Schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.ids import NO_CONTROL_PATTERN, IdString
from schemas.limits import (
    MAX_CLIENT_MSG_ID_CHARS,
    MAX_EMOJI_CHARS,
    MAX_HELLO_CURSORS,
    MAX_PRESENCE_USER_IDS,
)

ErrorCode = Literal[
    "invalid",
    "too_large",
    "not_member",
    "not_found",
    "forbidden",
    "rate_limited",
    "unauthorized",
    "suspended",
    "internal",
]
# Chosen by the client, stored as the send's idempotency key: no control characters.
ClientMsgId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CLIENT_MSG_ID_CHARS, pattern=NO_CONTROL_PATTERN),
]


class _ClientFrame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Hello(_ClientFrame):
    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=256)]
    cursors: Annotated[dict[IdString, IdString], Field(max_length=MAX_HELLO_CURSORS)] | None = None


class Send(_ClientFrame):
    type: Literal["send"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    # The length limit is checked by the gateway so that it can answer `too_large`.
    text: Annotated[str, Field(min_length=1)]
    reply_to: IdString | None = None  # a reply: the message of the channel it answers


class Ack(_ClientFrame):
    type: Literal["ack"]
    channel_id: IdString
    message_id: IdString


class Edit(_ClientFrame):
    """Replace the text of one of the user's own messages."""

    type: Literal["edit"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    message_id: IdString
    # The length limit is checked by the gateway so that it can answer `too_large`.
    text: Annotated[str, Field(min_length=1)]


class Delete(_ClientFrame):
    """Delete a message: one's own, or anyone's as a group's owner or admin."""

    type: Literal["delete"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    message_id: IdString


class React(_ClientFrame):
    """Add (or, with `removed`, take back) the user's reaction with `emoji` to a message."""

    type: Literal["react"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    message_id: IdString
    emoji: Annotated[
        str, Field(min_length=1, max_length=MAX_EMOJI_CHARS, pattern=NO_CONTROL_PATTERN)
    ]
    removed: bool = False


class Pin(_ClientFrame):
    """Pin a message of the channel (a group's owners and admins; either member of a direct
    channel)."""

    type: Literal["pin"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    message_id: IdString


class Unpin(_ClientFrame):
    """Unpin a pinned message (whoever may pin it)."""

    type: Literal["unpin"]
    client_msg_id: ClientMsgId
    channel_id: IdString
    message_id: IdString


class Read(_ClientFrame):
    """The user has read the channel up to `message_id` (moves the user's marker forward)."""

    type: Literal["read"]
    channel_id: IdString
    message_id: IdString


class Typing(_ClientFrame):
    """The user is typing in the channel (repeat every few seconds while typing)."""

    type: Literal["typing"]
    channel_id: IdString


class Heartbeat(_ClientFrame):
    type: Literal["heartbeat"]


class PresenceSubscribe(_ClientFrame):
    type: Literal["presence.subscribe"]
    user_ids: Annotated[list[IdString], Field(max_length=MAX_PRESENCE_USER_IDS)]


AnyClientFrame = (
    Hello
    | Send
    | Edit
    | Delete
    | React
    | Pin
    | Unpin
    | Ack
    | Read
    | Typing
    | Heartbeat
    | PresenceSubscribe
)
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]
CLIENT_FRAME_TYPES = (
    "hello",
    "send",
    "edit",
    "delete",
    "react",
    "pin",
    "unpin",
    "ack",
    "read",
    "typing",
    "heartbeat",
    "presence.subscribe",
)
CHANGE_FRAME_TYPES = ("edit", "delete", "react", "pin", "unpin")


class _ServerFrame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Welcome(_ServerFrame):
    type: Literal["welcome"]
    user_id: str
    device_id: str
    heartbeat_interval_s: int


class Synced(_ServerFrame):
    type: Literal["synced"]


class Accepted(_ServerFrame):
    type: Literal["accepted"]
    client_msg_id: str
    channel_id: str


class QuoteBody(BaseModel):
    """What a reply shows of the message it answers: its sender and the start of its text (at
    most 200 characters), or `deleted` once it is deleted."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sender_id: str
    text: str
    deleted: bool | None = None


class MessageFrame(_ServerFrame):
    type: Literal["message"]
    channel_id: str
    message_id: IdString
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str
    sent_at: str
    edited_at: str | None = None
    deleted: bool | None = None
    reactions: dict[str, list[str]] | None = None
    reply_to: IdString | None = None
    reply_count: int | None = None
    last_reply_id: IdString | None = None  # the newest reply `reply_count` counts
    quote: QuoteBody | None = None
    pinned_by: str | None = None  # pinned, by whom
    pinned_at: str | None = None  # pinned, when
    mentions: list[str] | None = None  # the members its `@username`s name (schemas/mentions.py)


class _ChangeFrame(_ServerFrame):
    channel_id: str
    message_id: IdString  # the change's own id, in the channel's order
    target_id: IdString  # the message it changes
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str
    sent_at: str


class EditFrame(_ChangeFrame):
    type: Literal["edit"]


class DeleteFrame(_ChangeFrame):
    type: Literal["delete"]


class ReactionFrame(_ChangeFrame):
    type: Literal["reaction"]
    emoji: str
    removed: bool
    refused: Literal["message_limit", "user_limit"] | None = None  # stored as taken back


class PinFrame(_ChangeFrame):
    """`sender_id` pinned the message `target_id`; one beyond the channel's cap has
    `refused: "pin_limit"` and pinned nothing."""

    type: Literal["pin"]
    refused: Literal["pin_limit"] | None = None


class UnpinFrame(_ChangeFrame):
    """`sender_id` unpinned the message `target_id`."""

    type: Literal["unpin"]


class PresenceFrame(_ServerFrame):
    type: Literal["presence"]
    user_id: str
    status: Literal["online", "offline"]
    last_active_at: str | None


class ReadFrame(_ServerFrame):
    """The user's own read marker moved (on any of their devices)."""

    type: Literal["read"]
    channel_id: str
    message_id: IdString


class Receipt(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    user_id: str
    message_id: IdString


class ReceiptsFrame(_ServerFrame):
    """Members who share receipts read further in the channel (coalesced: one frame for many)."""

    type: Literal["receipts"]
    channel_id: str
    reads: list[Receipt]


class TypingFrame(_ServerFrame):
    """A member is typing; show it for `expires_in_ms` unless repeated (or they send)."""

    type: Literal["typing"]
    channel_id: str
    user_id: str
    expires_in_ms: int


class NotificationsFrame(_ServerFrame):
    """The user's notification settings for a channel changed (on any of their devices)."""

    type: Literal["notifications"]
    channel_id: str
    level: Literal["all", "mentions", "none"]
    muted_until: str | None
    version: int  # of two frames of one channel, the higher version is the newer settings


class Error(_ServerFrame):
    type: Literal["error"]
    code: ErrorCode
    message: str
    ref: str | None = None


ALL_FRAMES: dict[str, type[BaseModel]] = {
    "client.hello.v1": Hello,
    "client.send.v1": Send,
    "client.ack.v1": Ack,
    "client.edit.v1": Edit,
    "client.delete.v1": Delete,
    "client.react.v1": React,
    "client.pin.v1": Pin,
    "client.unpin.v1": Unpin,
    "client.read.v1": Read,
    "client.typing.v1": Typing,
    "client.heartbeat.v1": Heartbeat,
    "client.presence.subscribe.v1": PresenceSubscribe,
    "server.welcome.v1": Welcome,
    "server.synced.v1": Synced,
    "server.accepted.v1": Accepted,
    "server.message.v1": MessageFrame,
    "server.edit.v1": EditFrame,
    "server.delete.v1": DeleteFrame,
    "server.reaction.v1": ReactionFrame,
    "server.pin.v1": PinFrame,
    "server.unpin.v1": UnpinFrame,
    "server.presence.v1": PresenceFrame,
    "server.read.v1": ReadFrame,
    "server.receipts.v1": ReceiptsFrame,
    "server.typing.v1": TypingFrame,
    "server.notifications.v1": NotificationsFrame,
    "server.error.v1": Error,
}
