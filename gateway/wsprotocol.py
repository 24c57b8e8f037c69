"""uvicorn's wsproto WebSocket protocol, with less memory held by each idle socket.

uvicorn (pinned in pyproject.toml) gives every socket an `asyncio.Queue` for incoming ASGI
events and an `asyncio.Event` for write flow control. Between them they hold five deques, about
4 KiB per socket, for what is at most a few events waiting at a time (uvicorn pauses reading
until each message is taken) and one or two writers waiting. `LeanWSProtocol` swaps in two
small slotted equivalents whose containers exist only while something waits. Once the socket is
open it also drops wsproto's handshake state and the request's headers, and swaps wsproto's
event deque for a list (`EventList`). It also writes a text frame at once when the socket is
open and takes data (`write_text_now`), encoding a frame sent to many sockets once
(`text_frame`). Everything else is uvicorn's code, unchanged.

They provide only what uvicorn's `WSProtocol` calls on them: `put_nowait`, `get` and `empty`;
`set`, `clear` and `wait`. `write_text_now` reads uvicorn's `disconnected`, `close_sent`,
`handshake_complete`, `response_started`, `writable` and wsproto's connection state. An upgrade
of uvicorn must check that all this still holds.

A message over `ws_max_size` does not close the socket (uvicorn closes it with 1009): the rest
of it is read and dropped as it arrives, so memory does not grow with its size, and the app gets
one `OVERSIZED` event in its place, which it answers with a `too_large` error (SPEC §4).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.wsproto_impl import FrameTooLargeError, WSProtocol
from uvicorn.server import ServerState
from wsproto import events
from wsproto.connection import ConnectionState
from wsproto.handshake import H11Handshake

# The ASGI receive event of a message over `ws_max_size`: its text is not kept, only its head
# (`OVERSIZED_HEAD_CHARS`), from which the gateway reads a `client_msg_id` to answer with.
OVERSIZED = "parley.oversized_head"
OVERSIZED_HEAD_CHARS = 512


class EventQueue:
    """A FIFO with one reader at a time (the ASGI app's `receive`), as `asyncio.Queue` is used."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self, reader: WSProtocol | None = None) -> Any:
        """The next item; once none is left, `reader`'s paused reading resumes (what uvicorn's
        `WSProtocol.receive` does after its `get`: `LeanWSProtocol.receive`)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.pop(0)
        if not self._items:
            self._items = None
            if reader is not None and reader.read_paused:
                reader.read_paused = False
                reader.transport.resume_reading()
        return item


class Flag:
    """`asyncio.Event` for uvicorn's `writable`: set while the transport takes more data."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None


class _HandshakeDone:
    """Stands in for wsproto's `H11Handshake` once the socket is open: after the handshake,
    `WSConnection` asks it only for `events()`, and it has none."""

    __slots__ = ()

    def events(self) -> tuple[()]:
        return ()


HANDSHAKE_DONE = _HandshakeDone()


class EventList(list[Any]):
    """Stands in for the `deque` of events an open wsproto `Connection` keeps (a deque holds a
    block of 64 slots, ~0.7 KiB, from its creation). wsproto only appends to it (the abnormal
    closure when the peer vanishes), asks whether it is empty and pops its head: an empty
    list is 56 bytes, and it is empty but for that one event."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class LeanWSProtocol(WSProtocol):
    # uvicorn's WSProtocol keeps 33 attributes in its instance __dict__: past 30, Python gives
    # up on key-sharing and each instance gets a dict of its own (~1.6 KiB). As slots they are
    # about 0.3 KiB. The names are every `self.x` WSProtocol sets (uvicorn 0.54.0).
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "buffer",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "default_headers",
        "disconnected",
        "handshake_complete",
        "last_ping_rtt",
        "logger",
        "loop",
        "oversized",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "response_started",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = EventQueue()  # type: ignore[assignment]
        writable = Flag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]
        # The head of the message being dropped, while one over `ws_max_size` arrives.
        self.oversized: str | None = None

    def data_received(self, data: bytes) -> None:
        """uvicorn's `data_received`, but whole small text frames at the head of `data` are read
        here (`read_text_frames`) while wsproto holds nothing half-read; the rest, if any, goes
        to wsproto, which then also answers whatever is wrong with it as it always did."""
        connection = self.conn.connection
        if (
            connection is not None
            and not connection._proto.extensions
            and connection._proto._frame_decoder.header is None
            and not connection._proto._frame_decoder.buffer.buffer
            and connection._proto._message_decoder.opcode is None
            and not connection._events
            and connection.state is ConnectionState.OPEN
            and not self.close_sent
            and self.oversized is None
            and self.buffer.value is None
        ):
            texts, data = read_text_frames(data, self.config.ws_max_size)
            for text in texts:
                self._hand_over({"type": "websocket.receive", "text": text})
            if not data:
                return
        super().data_received(data)

    def receive(self) -> Awaitable[Any]:  # type: ignore[override]
        """uvicorn's `receive` (the next ASGI event, reading resumed once none is waiting), but
        the queue's coroutine itself, so no frame of its own stays suspended under a socket."""
        return self.queue.get(self)  # type: ignore[call-arg]

    def handle_message(self, event: events.TextMessage | events.BytesMessage) -> None:
        if self.oversized is None:
            try:
                self.buffer.extend(event)
            except FrameTooLargeError:
                kept = self.buffer.value.getvalue() if self.buffer.value is not None else ""
                self.oversized = kept[:OVERSIZED_HEAD_CHARS] if isinstance(kept, str) else ""
                self.buffer.clear()
        if not event.message_finished:
            return
        message: Any
        if self.oversized is not None:
            message = {"type": "websocket.receive", OVERSIZED: self.oversized}
            self.oversized = None
        else:
            message = self.buffer.to_message()
            self.buffer.clear()
        self._hand_over(message)

    def _hand_over(self, message: Any) -> None:
        """`message` to the app; as uvicorn does, read no more until the app took it."""
        self.queue.put_nowait(message)
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message: Any) -> None:
        await super().send(message)
        # Once open, the socket no longer needs wsproto's handshake state (an h11 connection,
        # the request and its headers, a deque: ~2.5 KiB).
        conn = self.conn
        if conn.connection is not None and isinstance(conn.handshake, H11Handshake):
            conn.handshake = HANDSHAKE_DONE  # type: ignore[assignment]
            conn.connection._events = EventList(conn.connection._events)  # type: ignore[assignment]
            # Nor the request's headers in its ASGI scope (~1 KiB, more from a browser): the
            # endpoint reads them before it accepts, never after.
            self.scope["headers"] = []

    def write_text_now(self, text: str) -> bool:
        """Write `text` as one frame at once, if the socket is open and its transport is not
        paused; False if not, and the caller goes through the ASGI `send`, which then waits for
        the transport or fails as uvicorn does. Only for a socket with nothing else queued,
        which keeps frames in order."""
        if (
            self.config.ws_per_message_deflate  # frames may be compressed: wsproto's to write
            or self.disconnected
            or self.close_sent
            or self.response_started
            or not self.handshake_complete
            or not self.writable.is_set()
            or self.conn.state is not ConnectionState.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(text_frame(text))
        return True


# A client frame read without wsproto is at most this long: past it, wsproto's incremental
# reading (and the oversized path) costs nothing next to the frame itself.
FAST_FRAME_BYTES = 64 * 1024


def read_text_frames(data: bytes, max_size: int) -> tuple[list[str], bytes]:
    """The texts of the whole, final, masked, uncompressed text frames of at most
    `FAST_FRAME_BYTES` (and `max_size`) at the head of `data`, and the bytes from the first
    that is not one (a control frame, a fragment, a frame cut off by the read, anything
    malformed or not UTF-8), which are wsproto's to read (RFC 6455 §5.2)."""
    texts: list[str] = []
    at, end = 0, len(data)
    while end - at >= 6:
        if data[at] != 0x81:  # FIN, no RSV bits, opcode 1 (text)
            break
        size = data[at + 1] ^ 0x80  # the mask bit must be set: a client's frames are masked
        head = at + 2
        if size == 126:
            if end - head < 2:
                break
            size = int.from_bytes(data[head : head + 2], "big")
            head += 2
            if size < 126:  # not the shortest encoding: wsproto refuses it
                break
        elif size > 126:  # unmasked, or a 64-bit length (over FAST_FRAME_BYTES anyway)
            break
        if size > FAST_FRAME_BYTES or size > max_size or end - head - 4 < size:
            break
        mask = data[head : head + 4]
        start = head + 4
        masked = int.from_bytes(data[start : start + size], "little")
        key = int.from_bytes((mask * (size // 4 + 1))[:size], "little")
        try:
            text = (masked ^ key).to_bytes(size, "little").decode()
        except UnicodeDecodeError:
            break
        texts.append(text)
        at = start + size
    return texts, data[at:] if at else data


@functools.lru_cache(maxsize=16)
def text_frame(text: str) -> bytes:
    """A server's unmasked, uncompressed text frame, as wsproto writes it. The frame of a
    message goes to every recipient's socket: the same `str` object, so encoded once."""
    payload = text.encode()
    size = len(payload)
    if size <= 125:
        header = bytes((0x81, size))
    elif size <= 0xFFFF:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload
