"""Read state and typing: a user's read marker per channel, read receipts, typing indicators.

A marker is the furthest message the user has read on any device; it only moves forward and
never past the channel's newest message (so no future message is born read). A move costs one
row written; the processors relay it to the user's devices and, for users who share receipts,
to the channel's members, coalesced (processors/signals.py). Typing is never stored.
"""

from __future__ import annotations

from typing import Any

from gateway.commands.channels import require_member
from gateway.commands.messages import membership_of, writer_membership
from gateway.errors import not_member, require_id
from gateway.services import Services
from schemas.events import ReadMovedV1, TypingV1
from schemas.ids import now_ms
from storage.protocols import Device
from storage.visibility import visible_from


async def mark_read(
    services: Services, caller: Device, channel_id: str, message_id: int
) -> int | None:
    """Move the caller's marker in the channel to `message_id` (at most the channel's newest
    message); returns where it stands if it moved, None if it was there or further already.
    `not_member` outside the channel: on the gateway's cache first, then by the store in the
    write itself, so a removal that lands in between leaves no marker."""
    stores = services.stores
    await membership_of(services, caller, channel_id)
    newest = (await stores.messages.last_message_ids([channel_id])).get(channel_id)
    if newest is None:
        return None
    upto = min(message_id, newest)
    move = await stores.reads.advance(caller.user_id, channel_id, upto)
    if move is None:
        raise not_member()
    if not move.moved:
        return None
    event = ReadMovedV1(
        channel_id=channel_id, user_id=caller.user_id, message_id=str(upto), shared=move.shared
    )
    await services.publisher.signal(event)
    return upto


async def typing(services: Services, caller: Device, channel_id: str) -> None:
    """Tell the channel's other members, live, that the caller is typing (never stored). The
    membership is read every time, as for a send: a block may have come since the sync."""
    await writer_membership(services, caller, channel_id)
    await services.publisher.signal(
        TypingV1(channel_id=channel_id, user_id=caller.user_id, at_ms=now_ms())
    )


async def receipts(services: Services, caller: Device, channel_id: object) -> list[dict[str, Any]]:
    """How far each member who shares receipts has read in the channel, furthest first; only
    the receipts that name a message the caller may see (storage/visibility.py), and in a
    direct channel with a block between its two members, only the caller's own."""
    channel_id = require_id(channel_id, "channel_id")
    membership = await require_member(services.stores.channels, channel_id, caller.user_id)
    lowest = visible_from(membership)
    found = await services.stores.reads.receipts(channel_id)
    if membership.blocked:
        found = {u: upto for u, upto in found.items() if u == caller.user_id}
    shown = [(user_id, upto) for user_id, upto in found.items() if upto >= lowest]
    ordered = sorted(shown, key=lambda item: (-item[1], item[0]))
    return [{"user_id": user_id, "message_id": str(upto)} for user_id, upto in ordered]
