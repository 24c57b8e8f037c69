"""The WebSocket half of the protocol: `hello` -> `welcome` -> sync -> `synced`, then live
frames (docs/protocol.md, "WebSocket").

A `Session` reads frames on demand: `next` and `until` wait with a deadline, and frames read
for `collect_messages` or `settle` stay unread for `next`. With `keep_frames` every frame
received is also kept in `frames` (tests read it; a long-lived client should not). For many
sockets at low cost, `raw_frames` and `stamped_frames` hand over the undecoded text and
`send_raw` sends text encoded once for all."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal, cast

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import State

from parley_client.codes import CloseCode
from parley_client.errors import SessionError
from parley_client.models import ErrorFrame, Frame, MessageFrame, Welcome


def encode_frame(frame: Mapping[str, Any]) -> str:
    """A client frame as the text of one WebSocket message."""
    return orjson.dumps(frame).decode()


class Session:
    """One WebSocket connection to a gateway. `Session.connect` opens one that is synced;
    `Session.open` one that has said nothing yet."""

    __slots__ = ("_unread", "frames", "started", "sync_messages", "synced_s", "welcome", "ws")

    observer: ClassVar[Callable[[Frame], None] | None] = None
    """Called with every frame any session reads (None, the default: nothing is called), for a
    test suite that checks all the server sent. `raw_frames` and `stamped_frames` hand frames
    over undecoded, unseen by it."""

    def __init__(self, ws: ClientConnection, *, keep_frames: bool = False) -> None:
        self.ws = ws
        """The underlying `websockets` connection, for what this class does not wrap."""
        self.frames: list[Frame] | None = [] if keep_frames else None
        self.welcome: Welcome | None = None
        self.sync_messages = 0
        """How many `message` frames the sync brought."""
        self.started = time.monotonic()
        self.synced_s: float | None = None
        """Seconds from opening the socket to `synced`."""
        # Frames read ahead (by collect_messages, settle) for `next`; made when first needed,
        # so that thousands of sessions that never read ahead carry none.
        self._unread: deque[Frame] | None = None

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        open_timeout_s: float = 30.0,
        close_timeout_s: float = 2.0,
        compression: Literal["deflate"] | None = "deflate",
        proxy: str | Literal[True] | None = True,
        max_queue: int = 16,
        keep_frames: bool = False,
    ) -> Session:
        """Connect to `url` (`ws://host:port/v1/ws`). `compression` is offered as browsers do
        (the gateway declines it); `proxy=True` takes a proxy from the environment; `max_queue`
        is how many received frames may wait unread before the socket stops reading.
        Raises SessionError (`handshake_…`, `timeout`, `os_<errno>`)."""
        started = time.monotonic()
        try:
            ws = await connect(
                url,
                compression=compression,
                proxy=proxy,
                max_size=None,  # the server bounds its frames; the client takes them whole
                # Parley's own heartbeats keep a socket alive; a library ping's pong would
                # wait behind every frame queued before it and time out under load.
                ping_interval=None,
                open_timeout=open_timeout_s,
                close_timeout=close_timeout_s,
                max_queue=max_queue,
            )
        except InvalidHandshake as exc:
            raise SessionError(f"handshake_{type(exc).__name__}", str(exc)) from exc
        except TimeoutError as exc:
            raise SessionError("timeout", f"not connected after {open_timeout_s:g}s") from exc
        except OSError as exc:
            raise SessionError(f"os_{exc.errno}", str(exc)) from exc
        session = cls(ws, keep_frames=keep_frames)
        session.started = started
        return session

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str,
        cursors: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 60.0,
        close_timeout_s: float = 2.0,
        compression: Literal["deflate"] | None = "deflate",
        proxy: str | Literal[True] | None = True,
        max_queue: int = 16,
        keep_frames: bool = False,
    ) -> Session:
        """Open, say hello with `token` (and `cursors`, channel id -> last message id had),
        and read up to `synced`, all within `timeout_s`. Raises SessionError if anything else
        happens; the socket is then dropped."""
        deadline = time.monotonic() + timeout_s
        session = await cls.open(
            url,
            open_timeout_s=timeout_s,
            close_timeout_s=close_timeout_s,
            compression=compression,
            proxy=proxy,
            max_queue=max_queue,
            keep_frames=keep_frames,
        )
        try:
            await session.send_hello(token, cursors)
            await session.until_synced(deadline - time.monotonic())
        except BaseException:
            await session.abort()
            raise
        return session

    async def until_synced(self, timeout_s: float) -> Welcome:
        """Read `welcome`, the sync's messages and `synced` (after `send_hello`). These frames
        are not left for `next`; the sync's messages are counted in `sync_messages` and, with
        `keep_frames`, kept in `frames`. Raises SessionError on an error frame, a close, or a
        timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                frame = await self._receive(deadline - time.monotonic())
            except TimeoutError:
                raise SessionError("timeout", f"not synced after {timeout_s:g}s") from None
            kind = frame.get("type")
            if kind == "welcome":
                self.welcome = Welcome(
                    str(frame["user_id"]),
                    str(frame["device_id"]),
                    float(frame["heartbeat_interval_s"]),
                )
            elif kind == "message":
                self.sync_messages += 1
            elif kind == "synced":
                if self.welcome is None:
                    raise SessionError("protocol", "synced before welcome")
                self.synced_s = time.monotonic() - self.started
                return self.welcome
            elif kind == "error":
                raise SessionError(f"error_{frame.get('code')}", str(frame.get("message")))

    # --- client frames ----------------------------------------------------------------------

    async def send_raw(self, data: str | bytes) -> None:
        """Send one WebSocket message as it is (bytes go as a binary frame). Raises
        SessionError once the socket is closed."""
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def send_frame(self, frame: Mapping[str, Any]) -> None:
        await self.send_raw(encode_frame(frame))

    async def send_hello(self, token: str, cursors: Mapping[str, str] | None = None) -> None:
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if cursors is not None:
            hello["cursors"] = dict(cursors)
        await self.send_frame(hello)

    async def send_message(
        self,
        channel_id: str,
        text: str,
        client_msg_id: str | None = None,
        *,
        reply_to: str | None = None,
    ) -> str:
        """Send a message (with `reply_to`, a reply to that message of the channel); returns
        its `client_msg_id` (a new random one unless given). Resend with the same id after a
        reconnect that came before `accepted`: it stays one message."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        frame = {"type": "send", "client_msg_id": client_msg_id, "channel_id": channel_id}
        if reply_to is not None:
            frame["reply_to"] = reply_to
        await self.send_frame({**frame, "text": text})
        return client_msg_id

    async def edit(
        self, channel_id: str, message_id: str, text: str, client_msg_id: str | None = None
    ) -> str:
        """Replace the text of one of the user's messages. Answered like a send (`accepted`,
        then an `edit` frame on every member's devices); returns its `client_msg_id`."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send_frame(
            {
                "type": "edit",
                "client_msg_id": client_msg_id,
                "channel_id": channel_id,
                "message_id": message_id,
                "text": text,
            }
        )
        return client_msg_id

    async def delete(
        self, channel_id: str, message_id: str, client_msg_id: str | None = None
    ) -> str:
        """Delete a message (one's own, or any as a group's owner or admin): a `delete` frame
        reaches every member's devices and the message becomes a tombstone."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        frame = {"type": "delete", "client_msg_id": client_msg_id}
        await self.send_frame({**frame, "channel_id": channel_id, "message_id": message_id})
        return client_msg_id

    async def react(
        self,
        channel_id: str,
        message_id: str,
        emoji: str,
        *,
        removed: bool = False,
        client_msg_id: str | None = None,
    ) -> str:
        """Add the user's reaction with `emoji` to a message (take it back with `removed`):
        a `reaction` frame reaches every member's devices. Reacting twice is one reaction."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send_frame(
            {
                "type": "react",
                "client_msg_id": client_msg_id,
                "channel_id": channel_id,
                "message_id": message_id,
                "emoji": emoji,
                "removed": removed,
            }
        )
        return client_msg_id

    async def pin(
        self,
        channel_id: str,
        message_id: str,
        *,
        unpin: bool = False,
        client_msg_id: str | None = None,
    ) -> str:
        """Pin a message of the channel (with `unpin`, unpin it): a group's owners and admins,
        either member of a direct channel. Answered like a send, then a `pin` (or `unpin`)
        frame on every member's devices."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        frame = {"type": "unpin" if unpin else "pin", "client_msg_id": client_msg_id}
        await self.send_frame({**frame, "channel_id": channel_id, "message_id": message_id})
        return client_msg_id

    async def ack(self, channel_id: str, message_id: str) -> None:
        """Move this device's cursor in the channel forward: the next sync starts after it."""
        await self.send_frame({"type": "ack", "channel_id": channel_id, "message_id": message_id})

    async def read(self, channel_id: str, message_id: str) -> None:
        """The user has read the channel up to `message_id`: moves the user's read marker (on
        every device: each gets a `read` frame), and tells members if receipts are shared."""
        await self.send_frame({"type": "read", "channel_id": channel_id, "message_id": message_id})

    async def typing(self, channel_id: str) -> None:
        """The user is typing: the channel's other members online get a `typing` frame. Repeat
        it every couple of seconds while typing; repeats within two seconds are not relayed."""
        await self.send_frame({"type": "typing", "channel_id": channel_id})

    async def heartbeat(self) -> None:
        await self.send_frame({"type": "heartbeat"})

    async def subscribe_presence(self, user_ids: Iterable[str]) -> None:
        """Watch these users (replacing the previous list; an empty one ends it). Answered by
        a `presence` frame per user, then one per change."""
        await self.send_frame({"type": "presence.subscribe", "user_ids": list(user_ids)})

    @contextlib.asynccontextmanager
    async def heartbeating(self, interval_s: float | None = None) -> AsyncIterator[None]:
        """Heartbeat every `interval_s` (default: what `welcome` asked) while in the block."""
        interval = interval_s or (self.welcome.heartbeat_interval_s if self.welcome else 15.0)

        async def beat() -> None:
            with contextlib.suppress(SessionError):
                while True:
                    await self.heartbeat()
                    await asyncio.sleep(interval)  # the protocol's cadence

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- server frames ----------------------------------------------------------------------

    async def next(self, timeout_s: float | None = 10.0) -> Frame:
        """The next frame not yet returned by `next` or `until`. Raises TimeoutError after
        `timeout_s` (None: wait for ever), SessionError once the socket is closed."""
        if self._unread:
            return self._unread.popleft()
        return await self._receive(timeout_s)

    async def until(self, predicate: Callable[[Frame], bool], timeout_s: float = 15.0) -> Frame:
        """Skip frames until one matches; raises TimeoutError if none does within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                frame = await self.next(max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise TimeoutError(f"no matching frame within {timeout_s:g}s") from None
            if predicate(frame):
                return frame

    async def accepted(self, client_msg_id: str, timeout_s: float = 15.0) -> Frame:
        """Skip frames until the send's `accepted`; an error frame for it raises SessionError."""

        def answers(frame: Frame) -> bool:
            if frame["type"] == "accepted":
                return bool(frame["client_msg_id"] == client_msg_id)
            return frame["type"] == "error" and frame.get("ref") == client_msg_id

        frame = await self.until(answers, timeout_s)
        if frame["type"] == "error":
            raise SessionError(f"error_{frame['code']}", str(frame["message"]))
        return frame

    async def collect_messages(
        self, channel_id: str, count: int, timeout_s: float = 30.0
    ) -> list[MessageFrame]:
        """Read until `count` message frames of the channel have arrived (with `keep_frames`);
        returns all of them so far. The frames read stay unread for `next`."""
        deadline = time.monotonic() + timeout_s
        have = len(self.messages(channel_id))  # then counted as frames arrive: no rescans
        while have < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {have} of {count} messages in {channel_id}")
            try:
                frame = await self._receive(remaining)
            except TimeoutError:
                continue
            self._read_ahead(frame)
            if frame["type"] == "message" and frame["channel_id"] == channel_id:
                have += 1
        return self.messages(channel_id)

    async def settle(self, quiet_s: float = 0.5) -> None:
        """Read until no frame arrived for `quiet_s`: to see that nothing more comes, where
        nothing marks the end. The frames read stay unread for `next`."""
        while True:
            try:
                self._read_ahead(await self._receive(quiet_s))
            except TimeoutError:
                return

    def messages(self, channel_id: str | None = None) -> list[MessageFrame]:
        """The message frames received so far (with `keep_frames`), of one channel or all."""
        return [
            cast(MessageFrame, f)
            for f in self._kept()
            if f["type"] == "message" and (channel_id is None or f["channel_id"] == channel_id)
        ]

    def errors(self) -> list[ErrorFrame]:
        """The error frames received so far (with `keep_frames`)."""
        return [cast(ErrorFrame, f) for f in self._kept() if f["type"] == "error"]

    async def raw_frames(self) -> AsyncIterator[str | bytes]:
        """Every frame as it came, undecoded and not kept, until the socket closes (then see
        `close_code`). Not to be mixed with `next`."""
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                yield raw

    async def stamped_frames(self) -> AsyncIterator[tuple[int, str | bytes]]:
        """`raw_frames`, each with the `time.monotonic_ns()` it was read at: one clock for
        every process on the machine, so latencies can be taken across processes."""
        clock = time.monotonic_ns
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                yield clock(), raw

    # --- closing ----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        """The code the server closed with (1006: dropped without a close frame); None while
        open. Compare with `CloseCode`."""
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    async def wait_closed(self, timeout_s: float = 10.0) -> int | None:
        """Wait until the server closes the socket; returns the close code."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout_s)
        return self.close_code

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close with the closing handshake (waiting at most the close timeout)."""
        await self.ws.close(code, reason)

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, as a vanished peer would."""
        transport = self.ws.transport
        if transport is not None:
            transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.wait_closed(), 1)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- internals --------------------------------------------------------------------------

    async def _receive(self, timeout_s: float | None) -> Frame:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout_s)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        frame: Frame = orjson.loads(raw)
        observe = Session.observer
        if observe is not None:
            observe(frame)
        if self.frames is not None:
            self.frames.append(frame)
        return frame

    def _read_ahead(self, frame: Frame) -> None:
        if self._unread is None:
            self._unread = deque()
        self._unread.append(frame)

    def _closed(self, exc: ConnectionClosed) -> SessionError:
        code = exc.rcvd.code if exc.rcvd is not None else CloseCode.ABNORMAL
        reason = exc.rcvd.reason if exc.rcvd is not None else None
        return SessionError(f"closed_{code}", str(exc), int(code), reason)

    def _kept(self) -> list[Frame]:
        if self.frames is None:
            raise RuntimeError("this session keeps no frames: open it with keep_frames=True")
        return self.frames
