"""The sync/live handoff of one socket (docs/architecture.md (b)).

A socket first gets every message it missed (the sync), then live deliveries from the inbox.
The handoff between the two:

1. the connection registers for live deliveries (they are held back while syncing),
2. the gateway fixes its read position in the user's inbox partition,
3. the store is read for every message after the device's positions,
4. held-back deliveries are released, then `synced`.

A message stored after (3) read the store was fanned out after (2), so it arrives live; one
stored before is in the sync. Per channel, ids only grow, so any delivery whose id was already
sent on this socket is dropped: nothing is lost and nothing is doubled on this socket.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from gateway import metrics
from gateway.encoding import frame
from gateway.services import Services
from schemas.frames import Hello
from schemas.ids import id_floor, parse_id
from schemas.message import frame_of
from storage.protocols import Device
from storage.replies import quoted
from storage.visibility import visible_from

Put = Callable[[str], Awaitable[None]]


class Handoff:
    """What one socket was sent, per channel, and the deliveries held back while it syncs."""

    # Slots, and the held list made only when needed: a gateway holds thousands of sockets.
    __slots__ = ("_delivered", "_held", "_held_bytes", "_live")

    def __init__(self) -> None:
        # Per channel, the newest message id sent on this socket.
        self._delivered: dict[str, int] = {}
        self._held: list[tuple[str, int, str]] | None = None
        self._held_bytes = 0
        self._live = False

    @property
    def held(self) -> int:
        return len(self._held or ())

    @property
    def held_bytes(self) -> int:
        """The memory of the held frames (as `gateway/outbox.py` counts it)."""
        return self._held_bytes

    def offer(self, channel_id: str, message_id: int, text: str) -> str | None:
        """A live delivery: the frame to send now, or None when it is held (syncing) or was
        sent already (at-least-once upstream)."""
        if not self._live:
            if self._held is None:
                self._held = []
            self._held.append((channel_id, message_id, text))
            self._held_bytes += sys.getsizeof(text)
            return None
        if message_id <= self._delivered.get(channel_id, 0):
            return None
        self._delivered[channel_id] = message_id
        metrics.DELIVERED.inc()
        return text

    async def sync(self, services: Services, device: Device, hello: Hello, put: Put) -> None:
        """Steps 3 and 4: send what the device missed in every channel, the held deliveries and
        `synced` through `put` (which waits for room), then turn live."""
        stores = services.stores
        cursors = hello.cursors or {}
        memberships = await stores.channels.memberships(device.user_id)
        await services.cursors.flush_device(device.device_id)
        acked = await stores.cursors.cursors(device.device_id)
        lowest: dict[str, int] = {}
        for m in memberships:
            # A channel joined before the device existed starts at the device's creation.
            default = id_floor(max(device.created_at_ms, m.joined_at_ms)) - 1
            given = parse_id(cursors.get(m.channel_id))
            # Never below what the member may see, whatever the cursor (the client's, or this
            # device's from before the user left and came back): storage/visibility.py.
            lowest[m.channel_id] = visible_from(m)
            start = given or acked.get(m.channel_id) or default
            self._delivered[m.channel_id] = max(start, lowest[m.channel_id] - 1)
        newest = await stores.messages.last_message_ids(sorted(self._delivered))
        for channel_id, last in newest.items():
            after = self._delivered[channel_id]
            while after < last:
                page = await stores.messages.page(
                    channel_id, after=after, limit=services.settings.sync_page_size
                )
                if not page:
                    break
                for message in await quoted(stores.messages, page, lowest[channel_id]):
                    target = message.target_id
                    if target is not None and target < lowest[channel_id]:
                        continue  # a change to a message the member may not see
                    await put(frame(frame_of(message.wire())))
                after = self._delivered[channel_id] = page[-1].message_id
        # Live begins only once nothing is held: no await between the last check and the
        # switch, so no delivery can slip in out of order.
        await self._release(put)
        await put(frame({"type": "synced"}))
        await self._release(put)
        self._live = True

    async def _release(self, put: Put) -> None:
        while self._held:
            held, self._held = self._held, None
            self._held_bytes = 0
            for channel_id, message_id, text in held:
                if message_id > self._delivered.get(channel_id, 0):
                    self._delivered[channel_id] = message_id
                    metrics.DELIVERED.inc()
                    await put(text)
