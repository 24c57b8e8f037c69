"""One client socket: hello, sync, then live traffic (SPEC §3).

Lifecycle: AWAITING_HELLO -> SYNCING -> LIVE -> CLOSED; any state may go to CLOSED and no other
transition is legal. The sync/live handoff (docs/architecture.md):

1. the connection registers for live deliveries (they are held back while SYNCING),
2. the gateway fixes its read position in the user's inbox partition,
3. the store is read for every message after the device's cursors,
4. held-back deliveries are released, then `synced`.

A message stored after (3) read the store was fanned out after (2), so it arrives live; one
stored before is in the sync. Per channel, ids only grow, so the connection drops any delivery
whose id it already sent: nothing is lost and nothing is doubled on this socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import accounts, metrics
from gateway.connections import Registry
from gateway.cursors import CursorWriter
from gateway.encoding import frame
from gateway.errors import ApiError
from gateway.follower import PartitionFollower
from gateway.frames import FrameError, check_send, parse_frame, parse_hello
from gateway.outbox import Outbox
from gateway.presence import PresenceHub, authorize, snapshot
from gateway.publisher import Publisher
from gateway.registry import GatewayRegistry
from gateway.tokens import Passwords
from schemas.events import MessageSendV1
from schemas.frames import Ack, Heartbeat, Hello, PresenceSubscribe, Send
from schemas.ids import id_floor, now_ms, parse_id
from schemas.settings import Settings
from storage.protocols import Device
from storage.stores import Stores

log = logging.getLogger("parley.connection")

CLOSE_UNAUTHORIZED = 4001
CLOSE_TOO_SLOW = 4008
CLOSE_GOING_AWAY = 1001
CLOSE_SERVER_ERROR = 1011
CLOSE_IDLE = 4002


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


@dataclass
class Services:
    """What a connection works with; one per gateway process."""

    settings: Settings
    stores: Stores
    publisher: Publisher
    inbox: PartitionFollower
    presence: PresenceHub
    registry: Registry
    cursors: CursorWriter
    gateways: GatewayRegistry
    passwords: Passwords


class Connection:
    # Slots, and containers made only when needed: a gateway holds thousands of idle sockets.
    __slots__ = (
        "_delivered",
        "_held",
        "_killed",
        "_last_heartbeat",
        "_main",
        "_outbox",
        "_presence_sent",
        "_s",
        "_tasks",
        "_ws",
        "connection_id",
        "device_id",
        "state",
        "user_id",
    )

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self._ws = websocket
        self._s = services
        self.state = State.AWAITING_HELLO
        self.user_id = ""
        self.device_id = ""
        self.connection_id = secrets.token_hex(8)
        self._outbox = Outbox(
            websocket.send_text,
            services.settings.outbound_queue_frames,
            websocket.scope.get("parley.write_text_now"),
        )
        # Per channel, the newest message id sent on this socket (docs/architecture.md (b)).
        self._delivered: dict[str, int] = {}
        self._held: list[tuple[str, int, str]] | None = None
        self._tasks: set[asyncio.Task[None]] | None = None
        self._presence_sent: dict[str, str] | None = None
        self._main: asyncio.Task[Any] | None = None
        self._killed: tuple[int, str] | None = None
        self._last_heartbeat = 0.0

    def _enter(self, state: State) -> None:
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"illegal connection transition {self.state} -> {state}")
        self.state = state

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        await self._ws.accept()
        self._main = asyncio.current_task()
        registered = watched = False
        metrics.CONNECTIONS.inc()
        try:
            greeting = await self._await_hello()
            if greeting is None:
                return
            self._enter(State.SYNCING)
            self._s.registry.add(self.user_id, self)
            registered = True
            watched = True
            await self._s.inbox.watch(self.user_id)
            self._s.publisher.presence("connect", self.user_id, self.device_id, self.connection_id)
            self._send(
                {
                    "type": "welcome",
                    "user_id": self.user_id,
                    "device_id": self.device_id,
                    "heartbeat_interval_s": self._s.settings.heartbeat_interval_s,
                }
            )
            try:
                await self._sync(*greeting)
            except Exception:
                log.exception("syncing a socket failed")
                await self._close_with_error(
                    "internal", "sync failed; reconnect", CLOSE_SERVER_ERROR
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
            if watched:
                await self._s.inbox.unwatch(self.user_id)
            await self._shutdown()

    async def _shutdown(self) -> None:
        for task in self._tasks or ():
            task.cancel()
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
        self.kill(CLOSE_UNAUTHORIZED, "session revoked")

    def _send(self, body: dict[str, Any]) -> None:
        self._queue(frame(body))

    def _queue(self, text: str) -> None:
        if self._killed is not None:
            return  # closing: the client resyncs whatever it did not get
        if not self._outbox.offer(text):
            # Backpressure: a socket that does not read is closed, never buffered without bound.
            metrics.SLOW_CLOSED.inc()
            self.kill(CLOSE_TOO_SLOW, "too slow: reconnect and sync")

    def _error(self, code: str, message: str, ref: str | None = None) -> None:
        metrics.ERRORS.labels(code).inc()
        body: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if ref is not None:
            body["ref"] = ref
        self._send(body)

    # --- hello -----------------------------------------------------------------------------

    async def _await_hello(self) -> tuple[Hello, Device] | None:
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
        except ApiError:
            await self._refuse("invalid or revoked token")
            return None
        except Exception:
            log.exception("authenticating a socket failed")
            await self._close_with_error("internal", "try again shortly", CLOSE_SERVER_ERROR)
            return None
        self.user_id, self.device_id = device.user_id, device.device_id
        return hello, device

    async def _refuse(self, message: str) -> None:
        await self._close_with_error("unauthorized", message, CLOSE_UNAUTHORIZED)

    async def _close_with_error(self, code: str, message: str, close_code: int) -> None:
        """Send an error frame, let it go out (for up to 5 s), and close with `close_code`."""
        self._error(code, message)
        self._killed = (close_code, message)
        await self._outbox.drain(5)

    # --- sync ------------------------------------------------------------------------------

    async def _sync(self, hello: Hello, device: Device) -> None:
        started = time.monotonic()
        stores = self._s.stores
        hello_cursors = hello.cursors or {}
        memberships = await stores.channels.memberships(self.user_id)
        await self._s.cursors.flush_device(self.device_id)
        acked = await stores.cursors.cursors(self.device_id)
        for m in memberships:
            given = parse_id(hello_cursors.get(m.channel_id))
            default = id_floor(max(device.created_at_ms, m.joined_at_ms)) - 1
            self._delivered[m.channel_id] = given or acked.get(m.channel_id) or default
        newest = await stores.messages.last_message_ids(sorted(self._delivered))
        for channel_id, last in newest.items():
            after = self._delivered[channel_id]
            while after < last:
                page = await stores.messages.page(
                    channel_id, after=after, limit=self._s.settings.sync_page_size
                )
                if not page:
                    break
                for message in page:
                    # Waits while the socket drains: a long sync cannot outgrow the outbox.
                    await self._outbox.put(frame({"type": "message", **message.wire()}))
                after = self._delivered[channel_id] = page[-1].message_id
        # Deliveries held back during the sync, then `synced`, all waiting for room in the
        # outbox like the sync itself; LIVE begins only once nothing is held (no await between
        # the last check and the switch, so no delivery can slip in out of order).
        await self._release_held()
        await self._outbox.put(frame({"type": "synced"}))
        await self._release_held()
        self._enter(State.LIVE)
        metrics.SYNC_SECONDS.observe(time.monotonic() - started)

    async def _release_held(self) -> None:
        while self._held:
            held, self._held = self._held, None
            for channel_id, message_id, text in held:
                if message_id > self._delivered.get(channel_id, 0):
                    self._delivered[channel_id] = message_id
                    metrics.DELIVERED.inc()
                    await self._outbox.put(text)

    def deliver(self, channel_id: str, message_id: int, text: str) -> None:
        """A message for this connection's user, from the inbox (called in the consumer's loop)."""
        if self.state is State.SYNCING:
            if self._held is None:
                self._held = []
            self._held.append((channel_id, message_id, text))
            if len(self._held) > self._s.settings.outbound_queue_frames and self._killed is None:
                metrics.SLOW_CLOSED.inc()
                self.kill(CLOSE_TOO_SLOW, "too many messages while syncing: reconnect")
            return
        if self.state is not State.LIVE or message_id <= self._delivered.get(channel_id, 0):
            return  # already sent on this socket (at-least-once upstream)
        self._delivered[channel_id] = message_id
        metrics.DELIVERED.inc()
        self._queue(text)

    # --- client frames ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        # A client heartbeats every interval; one silent for three is gone (a dead TCP peer
        # sends no FIN, and its socket would otherwise be held forever). One timer per socket,
        # moved on each frame, not a task per wait.
        idle_s = 3 * self._s.settings.heartbeat_interval_s
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                while True:
                    deadline.reschedule(loop.time() + idle_s)
                    message = await self._ws.receive()
                    deadline.reschedule(None)
                    if message["type"] == "websocket.disconnect":
                        return
                    raw = message.get("text")
                    del message  # neither it nor `raw` is held while the socket idles
                    if raw is None:
                        self._error("invalid", "frames must be JSON text")
                        continue
                    try:
                        await self._on_frame(raw)
                    except FrameError as exc:
                        self._error(exc.code, exc.message, exc.ref)
                    del raw
        except TimeoutError:
            await self._close_with_error("invalid", "no heartbeat: reconnect", CLOSE_IDLE)

    async def _on_frame(self, raw: str) -> None:
        parsed, ref = parse_frame(raw)
        try:
            if isinstance(parsed, Send):
                await self._on_send(parsed)
            elif isinstance(parsed, Ack):
                await self._on_ack(parsed)
            elif isinstance(parsed, Heartbeat):
                await self._on_heartbeat()
            elif isinstance(parsed, Hello):
                raise FrameError("invalid", "already said hello")
            else:
                await self._on_presence_subscribe(parsed)
        except FrameError:
            raise
        except Exception:
            # The database or broker failed: the client may retry (sends are idempotent).
            log.exception("handling a %s frame failed", parsed.type)
            raise FrameError(
                "internal", "the server could not handle this; try again", ref
            ) from None

    async def _on_send(self, send: Send) -> None:
        ref = send.client_msg_id
        check_send(send)
        if not self._s.registry.rate_bucket(self.device_id).take():
            raise FrameError("rate_limited", "too many messages; slow down", ref)
        # Checked against the database on every send: a removed member is refused at once.
        if await self._s.stores.channels.membership(send.channel_id, self.user_id) is None:
            raise FrameError("not_member", "you are not a member of this channel", ref)
        event = MessageSendV1(
            channel_id=send.channel_id,
            sender_id=self.user_id,
            sender_device_id=self.device_id,
            client_msg_id=send.client_msg_id,
            text=send.text,
            sent_at_ms=now_ms(),
        )
        try:
            acked = await self._s.publisher.send_message(event)
        except Exception:
            log.exception("publishing a send failed")
            raise FrameError(
                "internal", "could not queue the message; send it again", ref
            ) from None
        if self._tasks is None:
            self._tasks = set()
        task = asyncio.create_task(self._confirm(acked, send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, acked: asyncio.Future[object], send: Send) -> None:
        try:
            await acked
        except Exception:
            log.exception("the broker did not acknowledge a send")
            self._error(
                "internal", "could not queue the message; send it again", send.client_msg_id
            )
            return
        metrics.ACCEPTED.inc()
        self._send(
            {"type": "accepted", "client_msg_id": send.client_msg_id, "channel_id": send.channel_id}
        )

    async def _on_heartbeat(self) -> None:
        # Forwarded at most four times per presence timeout, whatever the client sends.
        now = time.monotonic()
        if now - self._last_heartbeat >= self._s.settings.heartbeat_timeout_s / 4:
            self._last_heartbeat = now
            self._s.publisher.presence(
                "heartbeat", self.user_id, self.device_id, self.connection_id
            )

    async def _on_presence_subscribe(self, request: PresenceSubscribe) -> None:
        try:
            user_ids = await authorize(
                self._s.stores.friends,
                self.user_id,
                request.user_ids,
                self._s.settings.max_presence_subscriptions,
            )
        except ApiError as exc:
            raise FrameError(exc.code, exc.message) from None
        # Follow first, then read: a change between the two is not missed (gateway/presence.py).
        self._presence_sent = None
        await self._s.presence.subscribe(self, user_ids)
        for body in await snapshot(self._s.stores.presence, user_ids):
            self.presence(body["user_id"], body["status"], frame({"type": "presence", **body}))

    def presence(self, user_id: str, status: str, text: str) -> None:
        """A presence frame for a watched user; sent only when the status changed."""
        if self.state is not State.LIVE:
            return
        if self._presence_sent is None:
            self._presence_sent = {}
        elif self._presence_sent.get(user_id) == status:
            return
        self._presence_sent[user_id] = status
        self._queue(text)

    async def _on_ack(self, ack: Ack) -> None:
        if ack.channel_id not in self._delivered:
            if await self._s.stores.channels.membership(ack.channel_id, self.user_id) is None:
                raise FrameError("not_member", "you are not a member of this channel")
            # Known to be a member from now on; nothing sent on this socket in it yet.
            self._delivered[ack.channel_id] = 0
        self._s.cursors.record(self.device_id, ack.channel_id, int(ack.message_id))
