"""The message as clients, history and the inbox topic see it.

A channel's rows are messages and changes to them, in one order with one id sequence: an
`edit`, `delete` or `reaction` row has its own id and names its message (`target_id`). A message
row as stored carries its latest state: the edited text and `edited_at`, `deleted` (a tombstone:
the text is gone), and its reactions (emoji -> who reacted).

Reactions are capped (schemas/limits.py): a message takes at most MAX_REACTIONS_PER_MESSAGE
different emoji, and one user's at most MAX_REACTIONS_PER_USER of them. The pipeline, the one
writer of a channel, applies the caps in the channel's order (`reaction_refusal`): a reaction
beyond them is stored, and delivered, as taken back with the reason in `refused`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, field_serializer

from schemas.limits import MAX_QUOTE_CHARS, MAX_REACTIONS_PER_MESSAGE, MAX_REACTIONS_PER_USER

Kind = Literal["message", "edit", "delete", "reaction", "pin", "unpin"]
CHANGES: tuple[Kind, ...] = ("edit", "delete", "reaction", "pin", "unpin")
# Why a reaction was not added: the message had MAX_REACTIONS_PER_MESSAGE different emoji, or
# the user had MAX_REACTIONS_PER_USER of them on it; why a pin was not: the channel had
# MAX_PINS_PER_CHANNEL pinned messages.
Refusal = Literal["message_limit", "user_limit", "pin_limit"]


class Quote(BaseModel):
    """What a reply shows of the message it answers, as that message is when it is read (never
    stored with the reply): its sender and the start of its text, or `deleted` and no text once
    it is deleted, so a deleted message's words never live on in its replies."""

    model_config = ConfigDict(frozen=True)

    sender_id: str
    text: str
    deleted: bool = False


def quote_of(original: Message) -> Quote:
    """The quote of `original` in its current state."""
    if original.deleted:
        return Quote(sender_id=original.sender_id, text="", deleted=True)
    return Quote(sender_id=original.sender_id, text=original.text[:MAX_QUOTE_CHARS])


class Message(BaseModel):
    """A persisted row. `message_id` is an integer here and a decimal string on the wire."""

    model_config = ConfigDict(frozen=True)

    channel_id: str
    message_id: int
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str  # an edit's new text; empty for a delete, a reaction and a deleted message
    sent_at: str
    kind: Kind = "message"
    target_id: int | None = None  # a change: the message it changes
    emoji: str | None = None  # a reaction
    removed: bool = False  # a reaction taken back
    refused: Refusal | None = None  # a reaction or pin beyond the caps: changes nothing
    edited_at: str | None = None  # a message: when it was last edited
    deleted: bool = False  # a message: deleted (a tombstone)
    reactions: dict[str, list[str]] | None = None  # a message: emoji -> user ids, sorted
    reply_to: int | None = None  # a message: the message of the channel it answers
    reply_count: int = 0  # a message: how many messages answer it (deleted ones included)
    last_reply_id: int | None = None  # a message: the newest reply `reply_count` counts
    pinned_by: str | None = None  # a message: pinned, by whom (None: not pinned)
    pinned_at: str | None = None  # a message: pinned, when (the pin's `sent_at`)
    # A reply: what it shows of `reply_to`, filled in by whoever reads it (never stored).
    quote: Quote | None = None
    # A message: the users its `@username`s mention, resolved when it was stored
    # (schemas/mentions.py); None when none.
    mentions: list[str] | None = None

    @field_serializer("message_id")
    def _id_as_string(self, value: int) -> str:
        return str(value)

    @field_serializer("target_id", "reply_to", "last_reply_id")
    def _target_as_string(self, value: int | None) -> str | None:
        return None if value is None else str(value)

    def wire(self) -> dict[str, Any]:
        """The row's fields as they appear in a frame or an HTTP body: a plain message has the
        seven fields of SPEC §1, and the others only when they say something."""
        body: dict[str, Any] = {
            "channel_id": self.channel_id,
            "message_id": str(self.message_id),
            "sender_id": self.sender_id,
            "sender_device_id": self.sender_device_id,
            "client_msg_id": self.client_msg_id,
            "text": self.text,
            "sent_at": self.sent_at,
        }
        if self.kind != "message":
            body["kind"] = self.kind
            body["target_id"] = str(self.target_id)
            if self.kind == "reaction":
                body["emoji"] = self.emoji
                body["removed"] = self.removed
            if self.refused is not None:
                body["refused"] = self.refused
            return body
        if self.reply_to is not None:
            body["reply_to"] = str(self.reply_to)
        if self.reply_count:
            body["reply_count"] = self.reply_count
            body["last_reply_id"] = str(self.last_reply_id)
        if self.deleted:
            body["deleted"] = True
            return body
        if self.quote is not None:
            body["quote"] = self.quote.model_dump(exclude_defaults=True)
        if self.edited_at is not None:
            body["edited_at"] = self.edited_at
        if self.reactions:
            body["reactions"] = self.reactions
        if self.pinned_by is not None:
            body["pinned_by"] = self.pinned_by
            body["pinned_at"] = self.pinned_at
        if self.mentions:
            body["mentions"] = self.mentions
        return body

    def encode(self) -> bytes:
        """The row's fields as JSON, as they appear inside an `inbox.message` event."""
        return orjson.dumps(self.wire())


def frame_of(wire: dict[str, Any]) -> dict[str, Any]:
    """The server frame of a row in its wire form: `message` for a message, else the change's
    kind (`edit`, `delete`, `reaction`, `pin`, `unpin`) as the frame's type."""
    kind = wire.get("kind")
    if kind is None:
        return {"type": "message", **wire}
    return {"type": kind, **{k: v for k, v in wire.items() if k != "kind"}}


def reaction_refusal(
    reactions: Mapping[str, Collection[str]] | None, user_id: str, emoji: str
) -> Refusal | None:
    """Why `user_id` may not add `emoji` to a message whose reactions are `reactions` (emoji ->
    who), or None if it may. Reacting again with an emoji one has already is never refused."""
    reactions = reactions or {}
    if user_id in reactions.get(emoji, ()):
        return None
    if sum(1 for users in reactions.values() if user_id in users) >= MAX_REACTIONS_PER_USER:
        return "user_limit"
    if emoji not in reactions and len(reactions) >= MAX_REACTIONS_PER_MESSAGE:
        return "message_limit"
    return None


def with_reaction(
    reactions: Mapping[str, Collection[str]] | None, user_id: str, emoji: str, removed: bool
) -> dict[str, list[str]]:
    """The reactions (emoji -> user ids, sorted) after `user_id` adds `emoji`, or takes it back
    (`removed`). Applying the same reaction twice gives the same reactions."""
    after = {e: set(users) for e, users in (reactions or {}).items()}
    who = after.setdefault(emoji, set())
    if removed:
        who.discard(user_id)
    else:
        who.add(user_id)
    return {e: sorted(users) for e, users in sorted(after.items()) if users}
