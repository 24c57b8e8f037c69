"""Coalesces `ack` frames into cursor writes.

A device acks every message it shows; writing each ack would cost a database write per message
per device. Acks are kept in memory (the highest per device and channel) and written in one
batch every `interval_s`, and for a device before its cursors are read for a sync. Losing the
last interval of acks in a crash only means those messages are synced again to a new socket;
"exactly once" holds per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from storage.errors import PermanentStoreError
from storage.protocols import CursorStore

log = logging.getLogger("parley.cursors")


class CursorWriter:
    def __init__(self, store: CursorStore, interval_s: float = 0.5) -> None:
        self._store = store
        self._interval_s = interval_s
        self._dirty: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, device_id: str, channel_id: str, message_id: int) -> None:
        key = (device_id, channel_id)
        if message_id > self._dirty.get(key, 0):
            self._dirty[key] = message_id

    async def flush_device(self, device_id: str) -> None:
        mine = {k: v for k, v in self._dirty.items() if k[0] == device_id}
        for key in mine:
            del self._dirty[key]
        await self._write(mine)

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        await self._write(dirty)

    async def _write(self, acks: dict[tuple[str, str], int]) -> None:
        pending = list(acks.items())
        try:
            while pending:
                (device_id, channel_id), message_id = pending[0]
                try:
                    await self._store.advance(device_id, channel_id, message_id)
                except PermanentStoreError:
                    # An ack the database can never take (e.g. the device was removed): drop it.
                    log.warning("dropping cursor %s/%s=%s", device_id, channel_id, message_id)
                pending.pop(0)
        except Exception:
            # Put the rest back (cursors never move backwards, so a later write is safe).
            for (device_id, channel_id), message_id in pending:
                self.record(device_id, channel_id, message_id)
            raise

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cursor-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("writing cursors failed; retrying")
