"""Messages: send one, change one (edit, delete, react), and acknowledge what a device has
shown (its sync cursor)."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry.trace import SpanKind

from gateway.commands.channels import MANAGERS
from gateway.errors import ApiError, invalid, not_found, not_member
from gateway.services import Services
from schemas.events import MessageChangeV1, MessageSendV1
from schemas.frames import Ack, Delete, Edit, Pin, React, Send, Unpin
from schemas.ids import now_ms
from schemas.limits import (
    MAX_PINS_PER_CHANNEL,
    MAX_REACTIONS_PER_MESSAGE,
    MAX_REACTIONS_PER_USER,
    MAX_TEXT_CHARS,
)
from schemas.message import Refusal, reaction_refusal
from storage.protocols import Device, Membership
from storage.visibility import visible_from
from topics import tracing

log = logging.getLogger("parley.messages")

REFUSALS: dict[Refusal, str] = {
    "message_limit": f"a message takes at most {MAX_REACTIONS_PER_MESSAGE} different emoji",
    "user_limit": f"you may put at most {MAX_REACTIONS_PER_USER} different emoji on a message",
    "pin_limit": f"a channel takes at most {MAX_PINS_PER_CHANNEL} pinned messages",
}


def check_text(text: str) -> None:
    """What a send's text must be beyond its model, judged before `accepted`: whatever the
    pipeline or a store could refuse later is refused here (SPEC §4, "accepted means stored")."""
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(413, "too_large", f"text is limited to {MAX_TEXT_CHARS} characters")
    if "\x00" in text:
        raise invalid("text must not contain NUL characters")


async def membership_of(
    services: Services, caller: Device, channel_id: str, fresh: bool = False
) -> Membership:
    """The caller's membership of a channel its socket acts in, or `not_member`: read from the
    gateway's cache, kept current by `inbox.membership` events, so a send, ack or read costs
    no store read. A refusal is never cached, so it is always the store's word (`fresh` reads
    the store even for an acceptance); an acceptance may lag a removal or a block by the time
    the event takes to reach this gateway (docs/architecture.md (e))."""
    membership = await services.memberships.get(channel_id, caller.user_id, fresh)
    if membership is None:
        raise not_member()
    return membership


async def writer_membership(
    services: Services, caller: Device, channel_id: str, fresh: bool = False
) -> Membership:
    """The caller's membership of a channel it writes to (sends, edits, reactions, typing):
    `not_member` outside it, and in a direct channel with a block between its two members (the
    socket's error codes are the spec's few, and such a channel may be read, and one's own
    messages deleted, but no longer written to)."""
    membership = await membership_of(services, caller, channel_id, fresh)
    if membership.blocked:
        raise ApiError(403, "not_member", "a block between you and this user forbids messages")
    return membership


def _take_send(services: Services, caller: Device) -> None:
    """One from the device's send bucket (sends and changes share it), or `rate_limited`."""
    if not services.registry.limits.send(caller.device_id).take():
        raise ApiError(429, "rate_limited", "too many messages; slow down")


async def publish_change(services: Services, event: MessageChangeV1) -> asyncio.Future[object]:
    """Queue a change checked by its command (a member's, or the operator's delete); the
    returned future resolves when the broker holds it."""
    return await _publish(services, event)


async def _publish(
    services: Services, event: MessageSendV1 | MessageChangeV1
) -> asyncio.Future[object]:
    what = "message" if isinstance(event, MessageSendV1) else "change"
    # The trace of the send starts here (topics/tracing.py; nothing is made when it is off).
    with tracing.span(f"parley.{what}", kind=SpanKind.PRODUCER) as span:
        if span is not None:
            span.set_attribute("parley.channel_id", event.channel_id)
            span.set_attribute("parley.client_msg_id", event.client_msg_id)
        try:
            return await services.publisher.send_message(event, tracing.headers_of(span))
        except Exception:
            log.exception("publishing a %s failed", what)
            raise ApiError(503, "internal", f"could not queue the {what}; send it again") from None


async def send(services: Services, caller: Device, request: Send) -> asyncio.Future[object]:
    """Queue the caller's message for its channel. The returned future resolves when the broker
    holds the send: from then on it will be stored and delivered (`accepted`). Sends queued in
    order land in order; the same (device, client_msg_id) is stored once, whatever the retries.
    """
    check_text(request.text)
    _take_send(services, caller)
    membership = await writer_membership(services, caller, request.channel_id)
    if request.reply_to is not None:
        await _answered(services, membership, int(request.reply_to))
    event = MessageSendV1(
        channel_id=request.channel_id,
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        client_msg_id=request.client_msg_id,
        text=request.text,
        sent_at_ms=now_ms(),
        reply_to=request.reply_to,
    )
    return await _publish(services, event)


async def _answered(services: Services, membership: Membership, message_id: int) -> None:
    """The message a reply answers must be a living message of the same channel that the
    replier may see (storage/visibility.py), or the send is refused before `accepted`. One
    deleted after this check is answered all the same: the reply then quotes a tombstone."""
    original = await services.stores.messages.get(membership.channel_id, message_id)
    if (
        original is None
        or original.kind != "message"
        or original.deleted
        or message_id < visible_from(membership)
    ):
        raise not_found("reply_to message")


async def change(
    services: Services, caller: Device, request: Edit | Delete | React | Pin | Unpin
) -> asyncio.Future[object]:
    """Queue the caller's edit, delete, reaction, pin or unpin of a message; as `send`, the
    returned future resolves when the broker holds it. Everything the pipeline would need to
    refuse is checked here: the message exists in the channel and the caller could see it, an
    edit is of the caller's own living message and its text is valid, a delete is of the
    caller's own message or by a group's owner or admin, a reaction is to a living message and
    one emoji, a pin or unpin is of a living message by a group's owner or admin or either
    member of a direct channel, and a pin fits the channel's cap."""
    if isinstance(request, Edit):
        check_text(request.text)
    if isinstance(request, React) and any(c.isspace() for c in request.emoji):
        raise invalid("emoji must not contain spaces")
    _take_send(services, caller)
    channel_id, target_id = request.channel_id, int(request.message_id)
    # A delete removes words, so a block does not stop it: each may delete their own.
    checked = membership_of if isinstance(request, Delete) else writer_membership
    membership = await checked(services, caller, channel_id)
    target = await services.stores.messages.get(channel_id, target_id)
    if target is None or target.kind != "message" or target_id < visible_from(membership):
        raise not_found("message")  # nor one the caller may not see (storage/visibility.py)
    own = target.sender_id == caller.user_id
    if isinstance(request, Delete) and not own and membership.role not in MANAGERS:
        # Refused on a cached role: ask the store (a member just made admin may delete).
        membership = await membership_of(services, caller, channel_id, fresh=True)
    if isinstance(request, Delete):
        if not own and membership.role not in MANAGERS:
            raise ApiError(403, "forbidden", "only its sender, or a group's owner or admin")
    elif target.deleted:
        raise not_found("message")  # deleted: nothing to edit or react to
    elif isinstance(request, Edit) and not own:
        raise ApiError(403, "forbidden", "only its sender edits a message")
    elif isinstance(request, Pin | Unpin):
        await _may_pin(services, caller, membership, target.pinned_by is not None, request)
    elif isinstance(request, React) and not request.removed:
        # As stored now; reactions accepted but not stored yet are judged by the pipeline, in
        # the channel's order (a reaction beyond the caps then arrives as `refused`).
        refusal = reaction_refusal(target.reactions, caller.user_id, request.emoji)
        if refusal is not None:
            raise invalid(REFUSALS[refusal])
    event = MessageChangeV1(
        kind="reaction" if isinstance(request, React) else request.type,
        channel_id=channel_id,
        target_id=request.message_id,
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        client_msg_id=request.client_msg_id,
        text=request.text if isinstance(request, Edit) else "",
        emoji=request.emoji if isinstance(request, React) else None,
        removed=request.removed if isinstance(request, React) else False,
        sent_at_ms=now_ms(),
    )
    return await _publish(services, event)


async def _may_pin(
    services: Services,
    caller: Device,
    membership: Membership,
    pinned: bool,
    request: Pin | Unpin,
) -> None:
    """Pins and unpins are a group's owners' and admins' (either member's in a direct channel);
    a pin of a message not pinned yet must fit the channel's cap, as stored now (pins accepted
    but not stored yet are judged by the pipeline, in the channel's order: `refused`)."""
    channel_id = request.channel_id
    if membership.role not in MANAGERS:
        # Refused on a cached role, or a plain member: ask the store (a member just made
        # admin may pin), and whether the channel is a direct one (either member pins).
        membership = await membership_of(services, caller, channel_id, fresh=True)
        channel = await services.stores.channels.channel(channel_id)
        direct = channel is not None and channel.type == "direct"
        if membership.role not in MANAGERS and not direct:
            raise ApiError(403, "forbidden", "only a group's owners and admins pin messages")
    if isinstance(request, Pin) and not pinned:
        pins = await services.stores.messages.pins(channel_id)
        if len(pins) >= MAX_PINS_PER_CHANNEL:
            raise invalid(REFUSALS["pin_limit"])


async def ack(services: Services, caller: Device, request: Ack) -> None:
    """Move the device's cursor in a channel forward to `message_id` (never back), while the
    caller is a member (the store writes it only for one: an ack taken before a removal and
    written after it is dropped)."""
    await membership_of(services, caller, request.channel_id)
    services.cursors.record(caller.device_id, request.channel_id, int(request.message_id))
