"""The frames waiting to be written to one socket, in order, bounded (SPEC §4: slow consumers).

An idle socket is most of a gateway's sockets, so an idle outbox holds nothing: its buffer and
its writer task exist only while frames wait. A frame queued while nothing waits is written at
once if the socket takes it (`write_now`, when the server offers it). Otherwise it is buffered
and starts a writer task if none runs; the task writes until the buffer is empty, then ends and
drops the buffer.

Bounded three ways: frames per socket, bytes per socket, and bytes over every socket of the
gateway (`Budget`). A socket whose peer stops reading fills its outbox, and `offer` then
refuses: the connection closes it (4008) rather than buffer without bound. Bytes are the
memory of the queued `str` objects; a frame fanned out to many sockets is one object, counted
once per socket that queues it, so the gateway total errs on the safe side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger("parley.outbox")


class Budget:
    """The bytes queued in every outbox of this gateway, and their limit."""

    __slots__ = ("limit", "queued")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued = 0


class Outbox:
    __slots__ = (
        "_budget",
        "_byte_limit",
        "_bytes",
        "_failed",
        "_frames",
        "_limit",
        "_room",
        "_send",
        "_write_now",
        "_writer",
    )

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        limit: int,
        byte_limit: int,
        budget: Budget,
        write_now: Callable[[str], bool] | None = None,
    ) -> None:
        self._send = send
        self._write_now = write_now
        self._limit = limit
        self._byte_limit = byte_limit
        self._budget = budget
        self._bytes = 0
        self._frames: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._failed = False

    def offer(self, text: str) -> bool:
        """Queue a frame; False, and nothing queued, if this outbox or the gateway's budget has
        no room for it."""
        if self._failed:
            return True  # the socket is gone: nothing will be read any more
        frames = self._frames
        if frames is None and self._write_now is not None and self._write_now(text):
            return True
        size = sys.getsizeof(text)
        if self._full(size):
            return False
        if self._budget.queued + size > self._budget.limit:
            return False
        self._enqueue(text, size)
        return True

    async def put(self, text: str) -> None:
        """Queue a frame, first waiting while this outbox is full (one caller at a time). The
        gateway's budget does not hold it back: what a socket syncs waits on its own writes."""
        size = sys.getsizeof(text)
        while self._full(size):
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None
        if self._failed:
            return
        if self._frames is None and self._write_now is not None and self._write_now(text):
            return
        self._enqueue(text, size)

    def _full(self, size: int) -> bool:
        """No room for one more frame of `size` bytes (an empty outbox always has room)."""
        frames = self._frames
        return frames is not None and (
            len(frames) >= self._limit or self._bytes + size > self._byte_limit
        )

    def _enqueue(self, text: str, size: int) -> None:
        frames = self._frames
        if frames is None:
            frames = self._frames = deque()
        frames.append(text)
        self._bytes += size
        self._budget.queued += size
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(frames))

    async def drain(self, timeout_s: float) -> None:
        """Wait, up to `timeout_s`, until every queued frame is written."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout_s)

    async def stop(self) -> None:
        """Drop the frames still queued and stop writing."""
        self._frames = None
        self._release_all()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _release_all(self) -> None:
        self._budget.queued -= self._bytes
        self._bytes = 0

    def _wake_putter(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def _write(self, frames: deque[str]) -> None:
        try:
            while frames:
                text = frames.popleft()
                if self._frames is frames:
                    size = sys.getsizeof(text)
                    self._bytes -= size
                    self._budget.queued -= size
                self._wake_putter()
                await self._send(text)
        except Exception as exc:
            # The socket is gone; the connection learns it from its read side and ends.
            log.debug("writing to a socket failed: %r", exc)
            self._failed = True
            frames.clear()
            if self._frames is frames:
                self._release_all()
        finally:
            # No await between the last check of `frames` and here: nothing slips in unwritten.
            if self._frames is frames:  # else `stop` replaced it and owns the state
                self._frames = self._writer = None
                self._wake_putter()
