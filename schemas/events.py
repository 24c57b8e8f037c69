"""Events on Parley's topics. Every event names its `type` and schema version `v`.

A consumer that meets a version it does not know treats the event as permanently bad
(dead-letters it) rather than guessing; producers bump `v` on any incompatible change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.limits import MAX_CLIENT_MSG_ID_CHARS, MAX_EMOJI_CHARS, MAX_TEXT_CHARS
from schemas.message import Message


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class MessageSendV1(_Event):
    """A client asked to send a message; the gateway checked membership and limits.

    Topic `parley.messages.v1`, key `channel_id`. `sent_at_ms` is the gateway's clock when it
    accepted the send; the sequencer derives the message id from it.
    """

    type: Literal["message.send"] = "message.send"
    v: Literal[1] = 1
    channel_id: str
    sender_id: str
    sender_device_id: str
    client_msg_id: Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_MSG_ID_CHARS)]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    sent_at_ms: int
    # A reply: the message of the same channel it answers (the gateway checked it is there).
    reply_to: str | None = None


class MessageChangeV1(_Event):
    """A client asked to edit, delete, react to, pin or unpin a message; the gateway checked
    membership, the message, the right to change it, and limits.

    Topic `parley.messages.v1`, key `channel_id`: in the channel's order, with its own id from
    the sequencer, and its own idempotency key (device, `client_msg_id`), as a send.
    """

    type: Literal["message.change"] = "message.change"
    v: Literal[1] = 1
    kind: Literal["edit", "delete", "reaction", "pin", "unpin"]
    channel_id: str
    target_id: str
    sender_id: str
    sender_device_id: str
    client_msg_id: Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_MSG_ID_CHARS)]
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] = ""  # an edit's new text
    emoji: Annotated[str, Field(min_length=1, max_length=MAX_EMOJI_CHARS)] | None = None
    removed: bool = False
    sent_at_ms: int


class ChannelMembersV1(_Event):
    """A channel's full member list after a change, published after the database commit.

    Topic `parley.messages.v1`, key `channel_id`, so it is ordered with the channel's messages:
    messages after it fan out to the new member list.
    """

    type: Literal["channel.members"] = "channel.members"
    v: Literal[1] = 1
    channel_id: str
    member_ids: list[str]


class InboxMessageV1(_Event):
    """A persisted message for the listed recipients, all of whose inboxes are in this partition.

    Topic `parley.inbox.v1`, key `channel_id`, partition chosen from the recipients' user id.
    """

    type: Literal["inbox.message"] = "inbox.message"
    v: Literal[1] = 1
    recipients: list[str]
    message: Message

    def encode(self) -> bytes:
        """The record, with the message in its wire form (as clients see it)."""
        return self.encode_parts(self.recipients, self.message.encode())

    @staticmethod
    def encode_parts(recipients: list[str], message_json: bytes) -> bytes:
        """`InboxMessageV1(recipients=…, message=m).encode()`, byte for byte, given
        `message_json = m.encode()`: the fan-out encodes a message once, not once per record."""
        return b"".join((_INBOX_HEAD, orjson.dumps(recipients), b',"message":', message_json, b"}"))


_INBOX_HEAD = b'{"type":"inbox.message","v":1,"recipients":'


class StoredMessageV1(_Event):
    """A row the processor has stored, with its id, in its wire form: a message, or a change
    to one (`message.kind` is `edit`, `delete` or `reaction`, naming its message in
    `target_id`), in the channel's one order.

    Topic `parley.stored.v1`, key `channel_id`, in channel order. Published after the store
    write, at least once: a consumer sees the same message again after a processor crash, and
    must treat it as one.
    """

    type: Literal["message.stored"] = "message.stored"
    v: Literal[1] = 1
    message: Message

    def encode(self) -> bytes:
        """The record, with the message in its wire form (as clients see it)."""
        return self.encode_message(self.message.encode())

    @staticmethod
    def encode_message(message_json: bytes) -> bytes:
        """`StoredMessageV1(message=m).encode()`, byte for byte, given `message_json = m.encode()`."""
        return b"".join((_STORED_HEAD, message_json, b"}"))


_STORED_HEAD = b'{"type":"message.stored","v":1,"message":'


class DeviceRevokedV1(_Event):
    """A device logged out: every gateway closes its sockets.

    Topic `parley.inbox.v1`, partition of the user's inbox.
    """

    type: Literal["device.revoked"] = "device.revoked"
    v: Literal[1] = 1
    user_id: str
    device_id: str


class UserSuspendedV1(_Event):
    """An operator suspended a user: every gateway closes the user's sockets (4003).

    Topic `parley.inbox.v1`, partition of the user's inbox, published after the suspension
    committed (as `device.revoked`).
    """

    type: Literal["user.suspended"] = "user.suspended"
    v: Literal[1] = 1
    user_id: str


AdminAction = Literal["reports.list", "user.suspend", "user.unsuspend", "user.messages.delete"]


class AdminActionV1(_Event):
    """An operator's action through the admin API, for the record: who (always `operator`,
    the holder of the admin token), what, on whom, when, and the request's id.

    Topic `parley.audit.v1`, key `target` (`operator` when there is none), published after the
    action took effect, before its answer. `detail` says more where the action has more to
    say (how many messages a bulk delete queued).
    """

    type: Literal["admin.action"] = "admin.action"
    v: Literal[1] = 1
    actor: Literal["operator"] = "operator"
    action: AdminAction
    target: str | None
    at_ms: int
    request_id: str
    detail: dict[str, int | str | bool] = Field(default_factory=dict)


class InboxMembershipV1(_Event):
    """The memberships of `user_ids` changed, committed in the database already: added,
    removed, a new role, a block or an unblock. Gateways drop what they cached of them
    (gateway/memberships.py), so a removed member's sends are refused without a store read.

    Topic `parley.inbox.v1`, key `channel_id` (the user id when there is none), partition of
    the users' inbox: one record per partition, listing the users whose inbox is there; the
    gateways holding their sockets follow it already. `channel_id` null: every channel of the
    users (a block or unblock changes the pair's direct channel, whose id the command does not
    read). Published after the commit, at least once; a repeat only costs a store read.
    """

    type: Literal["inbox.membership"] = "inbox.membership"
    v: Literal[1] = 1
    user_ids: list[str]
    channel_id: str | None


class PresenceEventV1(_Event):
    """Something a device did that bears on its user's presence.

    Topic `parley.presence.v1`, key `user_id`. `connection_id` names one socket: a device may
    have several. `logout` ends every socket of the device at once.
    """

    type: Literal["presence.event"] = "presence.event"
    v: Literal[1] = 1
    kind: Literal["connect", "heartbeat", "disconnect", "logout"]
    user_id: str
    device_id: str
    connection_id: str
    at_ms: int


class PresenceSeenV1(_Event):
    """The sockets one gateway saw heartbeat in one interval, for one presence partition: the
    aggregate that replaces a `presence.event` `heartbeat` per socket.

    Topic `parley.presence.v1`, key `seen/<gateway_id>`, partition `partition`
    (`key_partition(user_id)` of every entry: the partition of those users' own events).
    `seen` holds `(user_id, device_id, connection_id, at_ms)`, one per socket, with the time of
    its latest passed-on heartbeat in the interval; `at_ms` is when the gateway published the
    record. A socket's `connect` is published before any of its entries and its `disconnect`
    after all of them; the processor ignores an entry of a socket already disconnected.
    """

    type: Literal["presence.seen"] = "presence.seen"
    v: Literal[1] = 1
    gateway_id: str
    partition: int
    at_ms: int
    seen: list[tuple[str, str, str, int]]


class PresenceChangedV1(_Event):
    """A user went online or offline (decided by the presence processor).

    Topic `parley.presence-changes.v1`, key `user_id`, compacted: the latest per user is kept.
    """

    type: Literal["presence.changed"] = "presence.changed"
    v: Literal[1] = 1
    user_id: str
    status: Literal["online", "offline"]
    last_active_at: str


class PresenceAccessChangedV1(_Event):
    """Who may watch `user_id` changed for the `watcher_ids`: a friendship ended, or a channel
    they shared lost one of them. Gateways check again the subscriptions those watchers hold
    on `user_id`, and drop the ones no longer allowed. Published after the database commit.

    Topic `parley.presence-changes.v1`, key `access/<user_id>` (so compaction never replaces
    the user's latest `presence.changed`), in `user_id`'s partition: every gateway with a
    socket watching `user_id` follows it.
    """

    type: Literal["presence.access_changed"] = "presence.access_changed"
    v: Literal[1] = 1
    user_id: str
    watcher_ids: list[str]


class ReadMovedV1(_Event):
    """A user's read marker in a channel moved forward (already stored by the gateway).

    Topic `parley.signals.v1`, key `channel_id`. `shared`: the user shares read receipts, so
    the channel's other members are told too.
    """

    type: Literal["read.moved"] = "read.moved"
    v: Literal[1] = 1
    channel_id: str
    user_id: str
    message_id: str
    shared: bool


class TypingV1(_Event):
    """A member is typing in a channel: ephemeral, never stored, stale after a few seconds.

    Topic `parley.signals.v1`, key `channel_id`.
    """

    type: Literal["typing"] = "typing"
    v: Literal[1] = 1
    channel_id: str
    user_id: str
    at_ms: int


class InboxSignalV1(_Event):
    """A ready server frame (`read`, `receipts` or `typing`) for the listed recipients, all of
    whose inboxes are in this partition; delivered to their live sockets only, never synced.

    Topic `parley.inbox.v1`, key `channel_id`, partition chosen from the recipients' user id.
    """

    type: Literal["inbox.signal"] = "inbox.signal"
    v: Literal[1] = 1
    recipients: list[str]
    frame: dict[str, Any]


class GatewayAnnouncedV1(_Event):
    """A gateway is up (announced every `registry_interval_s`, less often in a large fleet) or
    going down.

    Topic `parley.gateways.v1`, key `gateway_id`, compacted.
    """

    type: Literal["gateway.announced"] = "gateway.announced"
    v: Literal[1] = 1
    gateway_id: str
    url: str
    status: Literal["up", "down"]
    connections: int
    at_ms: int
    # How long after `at_ms` the gateway counts as live without another announcement: it
    # announces less often as the fleet grows (gateway/registry.py). Absent (a gateway of an
    # earlier version): the reader's own `registry_ttl_s`.
    ttl_ms: int | None = Field(default=None, ge=1)


MessagesEvent = Annotated[
    MessageSendV1 | MessageChangeV1 | ChannelMembersV1, Field(discriminator="type")
]
InboxEvent = Annotated[
    InboxMessageV1 | DeviceRevokedV1 | InboxSignalV1 | InboxMembershipV1 | UserSuspendedV1,
    Field(discriminator="type"),
]
SignalsEvent = Annotated[ReadMovedV1 | TypingV1, Field(discriminator="type")]
PresenceInput = Annotated[PresenceEventV1 | PresenceSeenV1, Field(discriminator="type")]

messages_event = TypeAdapter[MessageSendV1 | MessageChangeV1 | ChannelMembersV1](MessagesEvent)
inbox_event = TypeAdapter[
    InboxMessageV1 | DeviceRevokedV1 | InboxSignalV1 | InboxMembershipV1 | UserSuspendedV1
](InboxEvent)
signals_event = TypeAdapter[ReadMovedV1 | TypingV1](SignalsEvent)
# `parley.presence.v1`: `presence.event` (every kind; `heartbeat` from gateways older than
# `presence.seen`, during a rolling upgrade) and `presence.seen`.
presence_input = TypeAdapter[PresenceEventV1 | PresenceSeenV1](PresenceInput)
# `parley.stored.v1` carries more types as the message's life grows (edits, deletions,
# reactions): its consumers read the `type` first and skip those they do not know.
stored_event = TypeAdapter[StoredMessageV1](StoredMessageV1)

ALL_EVENTS: dict[str, type[_Event]] = {
    "message.send.v1": MessageSendV1,
    "message.change.v1": MessageChangeV1,
    "channel.members.v1": ChannelMembersV1,
    "inbox.message.v1": InboxMessageV1,
    "device.revoked.v1": DeviceRevokedV1,
    "message.stored.v1": StoredMessageV1,
    "presence.event.v1": PresenceEventV1,
    "presence.changed.v1": PresenceChangedV1,
    "presence.seen.v1": PresenceSeenV1,
    "presence.access_changed.v1": PresenceAccessChangedV1,
    "gateway.announced.v1": GatewayAnnouncedV1,
    "read.moved.v1": ReadMovedV1,
    "typing.v1": TypingV1,
    "inbox.signal.v1": InboxSignalV1,
    "inbox.membership.v1": InboxMembershipV1,
    "user.suspended.v1": UserSuspendedV1,
    "admin.action.v1": AdminActionV1,
}
