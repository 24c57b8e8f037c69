"""Messages: send one, and acknowledge what a device has shown (its read cursor)."""

from __future__ import annotations

import asyncio
import logging

from gateway.commands.channels import require_member
from gateway.errors import ApiError, invalid
from gateway.services import Services
from schemas.events import MessageSendV1
from schemas.frames import Ack, Send
from schemas.ids import now_ms
from schemas.limits import MAX_TEXT_CHARS
from storage.protocols import Device

log = logging.getLogger("parley.messages")


def check_text(text: str) -> None:
    """What a send's text must be beyond its model, judged before `accepted`: whatever the
    pipeline or a store could refuse later is refused here (SPEC §4, "accepted means stored")."""
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(413, "too_large", f"text is limited to {MAX_TEXT_CHARS} characters")
    if "\x00" in text:
        raise invalid("text must not contain NUL characters")


async def send(services: Services, caller: Device, request: Send) -> asyncio.Future[object]:
    """Queue the caller's message for its channel. The returned future resolves when the broker
    holds the send: from then on it will be stored and delivered (`accepted`). Sends queued in
    order land in order; the same (device, client_msg_id) is stored once, whatever the retries.
    """
    check_text(request.text)
    if not services.registry.limits.send(caller.device_id).take():
        raise ApiError(429, "rate_limited", "too many messages; slow down")
    membership = await require_member(services.stores.channels, request.channel_id, caller.user_id)
    if membership.blocked:
        # `not_member`: the socket's error codes are the spec's few, and a blocked direct
        # channel is one the caller may read but no longer write to.
        raise ApiError(403, "not_member", "a block between you and this user forbids messages")
    event = MessageSendV1(
        channel_id=request.channel_id,
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        client_msg_id=request.client_msg_id,
        text=request.text,
        sent_at_ms=now_ms(),
    )
    try:
        return await services.publisher.send_message(event)
    except Exception:
        log.exception("publishing a send failed")
        raise ApiError(503, "internal", "could not queue the message; send it again") from None


async def ack(services: Services, caller: Device, request: Ack, known_member: bool) -> None:
    """Move the device's cursor in a channel forward to `message_id` (never back). The caller
    tells whether membership was already checked (a socket knows the channels it synced)."""
    if not known_member:
        await require_member(services.stores.channels, request.channel_id, caller.user_id)
    services.cursors.record(caller.device_id, request.channel_id, int(request.message_id))
