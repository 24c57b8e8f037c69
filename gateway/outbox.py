"""The frames waiting to be written to one socket, in order, bounded (SPEC §4: slow consumers).

An idle socket is most of a gateway's sockets, so an idle outbox holds nothing: its buffer and
its writer task exist only while frames wait. A frame queued while nothing waits is written at
once if the socket takes it (`write_now`, when the server offers it). Otherwise it is buffered
and starts a writer task if none runs; the task writes until the buffer is empty, then ends and
drops the buffer. A socket whose peer stops reading fills the buffer to `limit`, and `offer`
then refuses: the connection closes it (4008) rather than buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger("parley.outbox")


class Outbox:
    __slots__ = ("_failed", "_frames", "_limit", "_room", "_send", "_write_now", "_writer")

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        limit: int,
        write_now: Callable[[str], bool] | None = None,
    ) -> None:
        self._send = send
        self._write_now = write_now
        self._limit = limit
        self._frames: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._failed = False

    def offer(self, text: str) -> bool:
        """Queue a frame; False, and nothing queued, if `limit` frames already wait."""
        if self._failed:
            return True  # the socket is gone: nothing will be read any more
        frames = self._frames
        if frames is None:
            if self._write_now is not None and self._write_now(text):
                return True
            frames = self._frames = deque()
        elif len(frames) >= self._limit:
            return False
        frames.append(text)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(frames))
        return True

    async def put(self, text: str) -> None:
        """Queue a frame, first waiting while the outbox is full (one caller at a time)."""
        while self._frames is not None and len(self._frames) >= self._limit:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None
        self.offer(text)

    async def drain(self, timeout_s: float) -> None:
        """Wait, up to `timeout_s`, until every queued frame is written."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout_s)

    async def stop(self) -> None:
        """Drop the frames still queued and stop writing."""
        self._frames = None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _wake_putter(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def _write(self, frames: deque[str]) -> None:
        try:
            while frames:
                text = frames.popleft()
                self._wake_putter()
                await self._send(text)
        except Exception as exc:
            # The socket is gone; the connection learns it from its read side and ends.
            log.debug("writing to a socket failed: %r", exc)
            self._failed = True
            frames.clear()
        finally:
            # No await between the last check of `frames` and here: nothing slips in unwritten.
            if self._frames is frames:  # else `stop` replaced it and owns the state
                self._frames = self._writer = None
                self._wake_putter()
