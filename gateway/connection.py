"""One client socket: hello, sync, then live traffic (SPEC §3).

Lifecycle: AWAITING_HELLO -> SYNCING -> LIVE -> CLOSED; any state may go to CLOSED and no other
transition is legal. The sync/live handoff is `gateway/sync.py`'s; what each frame does is its
handler's, in the one table of `gateway/handlers.py`, which calls a command
(`gateway/commands/`). This module holds the socket: its states, its outbox, its timers, and
the frames' way to their handlers (the frame bucket, and the outcome as an `error` frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import metrics
from gateway.commands import accounts
from gateway.encoding import frame
from gateway.errors import ApiError
from gateway.frames import FrameError, parse_frame, parse_hello, too_large
from gateway.handlers import HANDLERS
from gateway.outbox import Outbox
from gateway.services import Services
from gateway.sync import Handoff
from gateway.wsprotocol import OVERSIZED
from schemas.codes import SUSPENDED_REASON, CloseCode
from schemas.frames import Hello
from schemas.ids import now_ms
from storage.protocols import Device

log = logging.getLogger("parley.connection")


class State(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    SYNCING = "syncing"
    LIVE = "live"
    CLOSED = "closed"


_NEXT: dict[State, set[State]] = {
    State.AWAITING_HELLO: {State.SYNCING, State.CLOSED},
    State.SYNCING: {State.LIVE, State.CLOSED},
    State.LIVE: {State.CLOSED},
    State.CLOSED: set(),
}


class Connection:
    # Slots, and containers made only when needed: a gateway holds thousands of idle sockets.
    __slots__ = (
        "_device",
        "_handoff",
        "_killed",
        "_last_heartbeat",
        "_main",
        "_outbox",
        "_s",
        "_ws",
        "connection_id",
        "last_heartbeat",
        "presence_sent",
        "state",
        "typed",
    )

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self._ws = websocket
        self._s = services
        self.state = State.AWAITING_HELLO
        self._device: Device | None = None  # known once the hello's token is checked
        self.connection_id = secrets.token_hex(8)
        self._outbox = Outbox(
            websocket.send_text,
            services.settings.outbound_queue_frames,
            services.settings.outbound_queue_bytes,
            services.outbound,
            websocket.scope.get("parley.write_text_now"),
        )
        self._handoff = Handoff()
        self._main: asyncio.Task[Any] | None = None
        self._killed: tuple[int, str] | None = None
        # The handlers' state (gateway/handlers.py's `Socket`).
        self.presence_sent: dict[str, str] | None = None  # user -> the status last sent
        self.last_heartbeat = 0.0  # when a heartbeat was last forwarded
        self.typed: dict[str, float] | None = None  # channel -> when typing was last relayed

    @property
    def user_id(self) -> str:
        return self._device.user_id if self._device is not None else ""

    @property
    def device_id(self) -> str:
        return self._device.device_id if self._device is not None else ""

    @property
    def caller(self) -> Device:
        assert self._device is not None  # frames are read only after the hello
        return self._device

    @property
    def services(self) -> Services:
        return self._s

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def _enter(self, state: State) -> None:
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"illegal connection transition {self.state} -> {state}")
        self.state = state

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        await self._ws.accept()
        self._main = asyncio.current_task()
        registered = watched = cached = False
        metrics.CONNECTIONS.inc()
        try:
            greeting = await self._await_hello()
            if greeting is None:
                return
            cap = self._s.settings.max_sockets_per_device
            if self._s.registry.sockets_of(self.device_id) >= cap:
                await self._close_with_error(
                    "rate_limited",
                    f"at most {cap} sockets per device: close another first",
                    CloseCode.TOO_MANY_SOCKETS,
                )
                return
            self._enter(State.SYNCING)
            self._s.registry.add(self.user_id, self)
            registered = True
            watched = True
            await self._s.inbox.watch(self.user_id)
            # Revoked since the hello read the device? A revocation committed before this read
            # is seen here; one after it is published after the inbox partition's position
            # was fixed, so its `device.revoked` reaches this registered socket.
            if not await self._still_live("session revoked"):
                return
            # Only now: every membership event for the user from here on is read.
            self._s.memberships.watch(self.user_id)
            cached = True
            self._s.publisher.presence("connect", self.user_id, self.device_id, self.connection_id)
            self.send(
                {
                    "type": "welcome",
                    "user_id": self.user_id,
                    "device_id": self.device_id,
                    "heartbeat_interval_s": self._s.settings.heartbeat_interval_s,
                }
            )
            try:
                await self._sync(greeting)
            except Exception:
                log.exception("syncing a socket failed")
                await self._close_with_error(
                    "internal", "sync failed; reconnect", CloseCode.SERVER_ERROR
                )
                return
            del greeting  # the hello and its cursors are not kept while the socket idles
            await self._read_loop()
        except asyncio.CancelledError:
            if self._killed is None:
                raise
        except WebSocketDisconnect:
            pass
        finally:
            metrics.CONNECTIONS.dec()
            if self.state is not State.CLOSED:
                self._enter(State.CLOSED)
            if registered:
                self._s.registry.remove(self.user_id, self)
                with contextlib.suppress(Exception):
                    await self._s.presence.unsubscribe(self)
                with contextlib.suppress(Exception):
                    self._s.publisher.presence(
                        "disconnect", self.user_id, self.device_id, self.connection_id
                    )
            if cached:
                self._s.memberships.unwatch(self.user_id)
            if watched:
                await self._s.inbox.unwatch(self.user_id)
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._killed is None:
            await self._outbox.drain(5)
        await self._outbox.stop()
        code, reason = self._killed or (1000, "")
        with contextlib.suppress(Exception):
            await self._ws.close(code, reason)

    def kill(self, code: int, reason: str) -> None:
        """Close the socket now, dropping queued frames (the client resyncs on reconnect)."""
        if self._killed is not None or self.state is State.CLOSED:
            return
        self._killed = (code, reason)
        if self._main is not None:
            self._main.cancel()

    def revoke(self) -> None:
        self.kill(CloseCode.UNAUTHORIZED, "session revoked")

    def send(self, body: dict[str, Any]) -> None:
        self._queue(frame(body))

    def _queue(self, text: str) -> None:
        if self._killed is not None:
            return  # closing: the client resyncs whatever it did not get
        if not self._outbox.offer(text):
            # Backpressure: a socket that does not read is closed, never buffered without bound.
            metrics.SLOW_CLOSED.inc()
            self.kill(CloseCode.TOO_SLOW, "too slow: reconnect and sync")

    def error(self, code: str, message: str, ref: str | None = None) -> None:
        metrics.ERRORS.labels(code).inc()
        body: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if ref is not None:
            body["ref"] = ref
        self.send(body)

    # --- hello -----------------------------------------------------------------------------

    async def _await_hello(self) -> Hello | None:
        try:
            async with asyncio.timeout(self._s.settings.hello_timeout_s):
                message = await self._ws.receive()
        except TimeoutError:
            await self._refuse("no hello within the time allowed")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        try:
            hello = parse_hello(message.get("text") or b"")
        except FrameError as exc:
            await self._refuse(exc.message)
            return None
        try:
            device = await accounts.authenticate(self._s.stores.accounts, hello.token)
        except ApiError as refused:
            if refused.code == "suspended":
                await self._suspended()
            else:
                await self._refuse("invalid or revoked token")
            return None
        except Exception:
            log.exception("authenticating a socket failed")
            await self._close_with_error("internal", "try again shortly", CloseCode.SERVER_ERROR)
            return None
        self._device = device
        return hello

    async def _still_live(self, reason: str) -> bool:
        """Whether the device is still live in the store (taking its current expiry, which a
        renewal moves); if not, the socket closes with 4001 and `reason`."""
        try:
            live = await self._s.stores.accounts.live_device(self.device_id)
        except Exception:
            log.exception("re-checking a socket's device failed")
            await self._close_with_error("internal", "try again shortly", CloseCode.SERVER_ERROR)
            return False
        if live is None or live.expires_at_ms <= now_ms():
            await self._close_with_error("unauthorized", reason, CloseCode.UNAUTHORIZED)
            return False
        if live.suspended:  # since the hello: the `user.suspended` may have gone by
            await self._suspended()
            return False
        self._device = live
        return True

    async def _suspended(self) -> None:
        await self._close_with_error("suspended", SUSPENDED_REASON, CloseCode.SUSPENDED)

    async def _refuse(self, message: str) -> None:
        await self._close_with_error("unauthorized", message, CloseCode.UNAUTHORIZED)

    async def _close_with_error(self, code: str, message: str, close_code: int) -> None:
        """Send an error frame, let it go out (for up to 5 s), and close with `close_code`."""
        self.error(code, message)
        self._killed = (close_code, message)
        await self._outbox.drain(5)

    # --- sync ------------------------------------------------------------------------------

    async def _sync(self, hello: Hello) -> None:
        assert self._device is not None
        started = time.monotonic()
        # Waits while the socket drains: a long sync cannot outgrow the outbox.
        await self._handoff.sync(self._s, self._device, hello, self._outbox.put)
        self._enter(State.LIVE)  # no await since the handoff turned live
        metrics.SYNC_SECONDS.observe(time.monotonic() - started)

    def deliver(self, channel_id: str, message_id: int, text: str) -> None:
        """A message for this connection's user, from the inbox (called in the consumer's loop)."""
        if self.state is not State.SYNCING and self.state is not State.LIVE:
            return
        now = self._handoff.offer(channel_id, message_id, text)
        if now is not None:
            self._queue(now)
            return
        settings, handoff = self._s.settings, self._handoff
        too_many = handoff.held > settings.outbound_queue_frames
        if (too_many or handoff.held_bytes > settings.outbound_queue_bytes) and not self._killed:
            metrics.SLOW_CLOSED.inc()
            self.kill(CloseCode.TOO_SLOW, "too many messages while syncing: reconnect")

    # --- client frames ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        # A client heartbeats every interval; one silent for three is gone (a dead TCP peer
        # sends no FIN, and its socket would otherwise be held forever). The token's expiry
        # shares that timer: a socket does not outlive its token unless the device renewed it
        # (then it runs to the new expiry). One timer per socket, moved on each frame, not a
        # task per wait.
        idle_s = 3 * self._s.settings.heartbeat_interval_s
        loop = asyncio.get_running_loop()
        while True:
            expires = loop.time() + (self.caller.expires_at_ms - now_ms()) / 1000
            idle_at = expires
            try:
                async with asyncio.timeout(None) as deadline:
                    while True:
                        idle_at = loop.time() + idle_s
                        deadline.reschedule(min(idle_at, expires))
                        message = await self._ws.receive()
                        deadline.reschedule(None)
                        if message["type"] == "websocket.disconnect":
                            return
                        raw = message.get("text")
                        head = message.get(OVERSIZED)
                        del message  # neither it nor `raw` is held while the socket idles
                        try:
                            if raw is None:
                                self._charge(1)
                                if head is not None:
                                    raise too_large(head)
                                raise FrameError("invalid", "frames must be JSON text")
                            await self._on_frame(raw)
                        except FrameError as exc:
                            self.error(exc.code, exc.message, exc.ref)
                        del raw
            except TimeoutError:
                # Which deadline it was, from what was set: the loop may fire a timer a clock
                # tick early, so the time now cannot tell.
                if idle_at < expires:
                    await self._close_with_error(
                        "invalid", "no heartbeat: reconnect", CloseCode.IDLE
                    )
                    return
                if not await self._still_live("token expired"):
                    return

    def _charge(self, cost: float) -> None:
        """Take `cost` from the device's bucket for frames other than `send` (which has its
        own), or refuse the frame: each costs parsing, and some queries or partition moves."""
        if not self._s.registry.limits.frames(self.device_id).take(cost):
            raise FrameError("rate_limited", "too many frames; slow down")

    async def _on_frame(self, raw: str) -> None:
        try:
            parsed, ref = parse_frame(raw)
        except FrameError:
            self._charge(1)  # refused frames count too
            raise
        route = HANDLERS[parsed.type]
        if route.cost:
            self._charge(route.cost)
        try:
            await route.handler(self, parsed)
        except FrameError:
            raise
        except ApiError as exc:
            raise FrameError(exc.code, exc.message, ref) from None
        except Exception:
            # The database or broker failed: the client may retry (sends are idempotent).
            log.exception("handling a %s frame failed", parsed.type)
            raise FrameError(
                "internal", "the server could not handle this; try again", ref
            ) from None

    def signal(self, text: str) -> None:
        """A read-marker, receipts or typing frame: for live sockets only (a syncing socket
        reads the current markers with its channel list; typing is never caught up on)."""
        if self.state is State.LIVE:
            self._queue(text)

    def presence(self, user_id: str, status: str, text: str) -> None:
        """A presence frame for a watched user; sent only when the status changed."""
        if self.state is not State.LIVE:
            return
        if self.presence_sent is None:
            self.presence_sent = {}
        elif self.presence_sent.get(user_id) == status:
            return
        self.presence_sent[user_id] = status
        self._queue(text)
