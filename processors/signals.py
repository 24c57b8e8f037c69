"""Relays read-marker moves and typing to the live sockets of a channel's members.

One batch of `parley.signals.v1` at a time. Per batch, a user's moves in a channel are
coalesced into the furthest one; the channel's shared moves go out as one `receipts` frame to
its members (each told only of the moves to messages they may see, storage/visibility.py),
and each reader's own devices get a `read` frame. Typing goes to the other members, and is
dropped once stale. Members, and blocks in direct channels, are read from the store for every
batch, whenever the move or the typing was taken: a removed member is told nothing more, and in
a direct channel with a block between its two members neither is shown the other's receipts or
typing (each one's own devices still follow its marker). Records go to the recipients' inbox
partitions; gateways hand them to live sockets only (nothing here is stored or synced).
At-least-once: a repeated batch repeats frames that clients apply idempotently (markers only
move forward).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from processors.fanout import by_inbox_partition
from processors.pipeline import RecordSink
from schemas.events import InboxSignalV1, ReadMovedV1, TypingV1, signals_event
from schemas.ids import now_ms
from schemas.limits import TYPING_TTL_MS
from storage.protocols import ChannelStore, Membership
from storage.visibility import visible_from

log = logging.getLogger("parley.signals")

Frame = dict[str, Any]


class SignalRelay:
    def __init__(
        self, channels: ChannelStore, sink: RecordSink, inbox: str, inbox_partitions: int
    ) -> None:
        self._channels = channels
        self._sink = sink
        self._inbox = inbox
        self._partitions = inbox_partitions

    async def handle(self, batch: Sequence[bytes]) -> int:
        """Relay a batch; returns the number of frames sent (one per recipient partition)."""
        reads: dict[tuple[str, str], ReadMovedV1] = {}
        typing: dict[tuple[str, str], TypingV1] = {}
        for raw in batch:
            try:
                event = signals_event.validate_json(raw)
            except ValidationError:
                log.error("skipping an unreadable signal")
                continue
            key = (event.channel_id, event.user_id)
            if isinstance(event, ReadMovedV1):
                known = reads.get(key)
                if known is None or int(event.message_id) > int(known.message_id):
                    reads[key] = event
            elif key not in typing or event.at_ms > typing[key].at_ms:
                typing[key] = event
        channel_ids = sorted({c for c, _ in reads} | {c for c, _ in typing})
        members = await self._channels.members_of(channel_ids) if channel_ids else {}
        blocked = await self._channels.blocked_direct(channel_ids) if channel_ids else set()
        out: list[tuple[str, Frame, list[str]]] = []
        receipts: dict[str, list[Frame]] = {}
        for (channel_id, user_id), read in reads.items():
            if user_id not in members.get(channel_id, ()):
                continue
            own: Frame = {"type": "read", "channel_id": channel_id, "message_id": read.message_id}
            out.append((channel_id, own, [user_id]))
            if read.shared and channel_id not in blocked:
                receipt = {"user_id": user_id, "message_id": read.message_id}
                receipts.setdefault(channel_id, []).append(receipt)
        for channel_id, moved in receipts.items():
            for shown, recipients in _visible_reads(moved, members[channel_id]):
                frame: Frame = {"type": "receipts", "channel_id": channel_id, "reads": shown}
                out.append((channel_id, frame, recipients))
        now = now_ms()
        for (channel_id, user_id), event in typing.items():
            left_ms = TYPING_TTL_MS - (now - event.at_ms)
            room = members.get(channel_id, {})
            if left_ms <= 0 or user_id not in room or channel_id in blocked:
                continue
            typing_frame: Frame = {
                "type": "typing",
                "channel_id": channel_id,
                "user_id": user_id,
                "expires_in_ms": left_ms,
            }
            out.append((channel_id, typing_frame, [u for u in room if u != user_id]))
        return await self._send(out)

    async def _send(self, out: list[tuple[str, Frame, list[str]]]) -> int:
        pending = []
        for channel_id, frame, recipients in out:
            for partition, users in by_inbox_partition(recipients, self._partitions):
                record = InboxSignalV1(recipients=users, frame=frame).encode()
                pending.append(
                    await self._sink.send(
                        self._inbox, channel_id.encode(), record, partition, None, None
                    )
                )
        # Acknowledged by the broker before the batch's offsets may be committed.
        await asyncio.gather(*pending)
        return len(pending)


def _visible_reads(
    moved: list[Frame], room: dict[str, Membership]
) -> list[tuple[list[Frame], list[str]]]:
    """A channel's receipts, each to the members who may see the message it names: (reads,
    recipients) per distinct set of reads (one, unless some members joined a group that hides
    its past from them)."""
    by_shown: dict[tuple[int, ...], list[str]] = {}
    for user_id, membership in sorted(room.items()):
        lowest = visible_from(membership)
        shown = tuple(i for i, read in enumerate(moved) if int(read["message_id"]) >= lowest)
        if shown:
            by_shown.setdefault(shown, []).append(user_id)
    return [([moved[i] for i in shown], users) for shown, users in by_shown.items()]
