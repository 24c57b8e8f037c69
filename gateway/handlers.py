"""What each client frame does: one table, frame type -> handler (SPEC §3).

`gateway/connection.py` holds the socket (its states, outbox and timers); it parses a frame
(`gateway/frames.py`), takes the frame's cost from the device's frame bucket, and awaits the
handler this table names. A handler calls a command (`gateway/commands/`), the one function
every entry point shares, and answers on the socket. A new frame type is a model in
`schemas/frames.py`, a handler here and a row in `HANDLERS`; the socket is not edited.

A handler raises `FrameError` or the command's `ApiError` to refuse a frame: the connection
answers with an `error` frame (carrying the frame's `client_msg_id` as `ref`), and the socket
stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import metrics
from gateway.commands import messages, presence, reads
from gateway.encoding import frame
from gateway.frames import FrameError
from gateway.services import Services
from schemas.frames import (
    CLIENT_FRAME_TYPES,
    Ack,
    Delete,
    Edit,
    Heartbeat,
    Hello,
    Pin,
    PresenceSubscribe,
    React,
    Read,
    Send,
    Typing,
    Unpin,
)
from schemas.limits import TYPING_REPEAT_MS
from storage.protocols import Device

log = logging.getLogger("parley.connection")

# A presence.subscribe reads the store and may move the gateway's partition follower: it costs
# this many frames of the device's frame bucket (at the default rate, one a second).
PRESENCE_SUBSCRIBE_COST = 50


class Socket(Protocol):
    """What a handler may use of the connection it runs for (`gateway.connection.Connection`)."""

    typed: dict[str, float] | None  # channel -> when typing was last relayed
    last_heartbeat: float  # when a heartbeat was last forwarded (monotonic)
    presence_sent: dict[str, str] | None  # user -> the status last sent

    @property
    def services(self) -> Services: ...

    @property
    def caller(self) -> Device: ...

    @property
    def user_id(self) -> str: ...

    @property
    def device_id(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def send(self, body: dict[str, Any]) -> None: ...

    def error(self, code: str, message: str, ref: str | None = None) -> None: ...

    def presence(self, user_id: str, status: str, text: str) -> None: ...


Handler = Callable[[Socket, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    cost: float
    """Frames taken from the device's frame bucket; 0 for the message frames, which the
    command charges to the device's send bucket instead."""


# --- handlers ------------------------------------------------------------------------------


async def on_message(socket: Socket, request: Send | Edit | Delete | React | Pin | Unpin) -> None:
    read_at = time.monotonic()
    if isinstance(request, Send):
        acked = await messages.send(socket.services, socket.caller, request)
    else:
        acked = await messages.change(socket.services, socket.caller, request)
    # A callback and a timer, not a task per send: `accepted` goes out when the broker
    # acknowledged, `internal` if it has not within `send_answer_timeout_s`.
    answer = _Answer(socket, request, read_at)
    loop = asyncio.get_running_loop()
    answer.timer = loop.call_later(socket.services.settings.send_answer_timeout_s, answer.late)
    acked.add_done_callback(answer.acked)


class _Answer:
    """The one answer to a send or change: `accepted` once the broker holds it, or `internal`
    (send it again, with the same client_msg_id) when the broker failed it or kept silent too
    long. A record answered `internal` may still be written; the resend then finds it."""

    __slots__ = ("read_at", "request", "socket", "timer")

    def __init__(
        self, socket: Socket, request: Send | Edit | Delete | React | Pin | Unpin, read_at: float
    ) -> None:
        self.socket = socket
        self.request = request
        self.read_at = read_at
        self.timer: asyncio.TimerHandle | None = None

    def acked(self, acked: asyncio.Future[object]) -> None:
        if self.timer is None:
            return  # answered `internal` already
        self.timer.cancel()
        self.timer = None
        if self.socket.closed:
            return  # the client resends what it saw no `accepted` for
        failure = None if acked.cancelled() else acked.exception()
        if acked.cancelled() or failure is not None:
            log.error("the broker did not acknowledge a send: %r", failure)
            self._internal()
            return
        metrics.ACCEPTED.inc()
        request = self.request
        self.socket.send(
            {
                "type": "accepted",
                "client_msg_id": request.client_msg_id,
                "channel_id": request.channel_id,
            }
        )
        metrics.SEND_SECONDS.observe(time.monotonic() - self.read_at)

    def late(self) -> None:
        self.timer = None
        if not self.socket.closed:
            log.warning("the broker did not acknowledge a send in time")
            self._internal()

    def _internal(self) -> None:
        self.socket.error(
            "internal", "could not queue the message; send it again", self.request.client_msg_id
        )


async def on_ack(socket: Socket, request: Ack) -> None:
    await messages.ack(socket.services, socket.caller, request)


async def on_read(socket: Socket, request: Read) -> None:
    await reads.mark_read(
        socket.services, socket.caller, request.channel_id, int(request.message_id)
    )


async def on_typing(socket: Socket, request: Typing) -> None:
    # Relayed at most once per TYPING_REPEAT_MS per channel: a client may send one per
    # keystroke, and the indicator it causes lasts longer than that.
    now = time.monotonic()
    if socket.typed is None:
        socket.typed = {}
    if now - socket.typed.get(request.channel_id, -1e9) < TYPING_REPEAT_MS / 1000:
        return
    await reads.typing(socket.services, socket.caller, request.channel_id)
    socket.typed[request.channel_id] = now


async def on_heartbeat(socket: Socket, request: Heartbeat) -> None:
    # Forwarded at most four times per presence timeout, whatever the client sends.
    now = time.monotonic()
    if now - socket.last_heartbeat >= socket.services.settings.heartbeat_timeout_s / 4:
        socket.last_heartbeat = now
        socket.services.publisher.presence(
            "heartbeat", socket.user_id, socket.device_id, socket.connection_id
        )


async def on_presence_subscribe(socket: Socket, request: PresenceSubscribe) -> None:
    socket.presence_sent = None
    for body in await presence.watch(socket.services, socket.caller, socket, request.user_ids):
        socket.presence(body["user_id"], body["status"], frame({"type": "presence", **body}))


async def on_hello(socket: Socket, request: Hello) -> None:
    raise FrameError("invalid", "already said hello")


HANDLERS: dict[str, Route] = {
    "hello": Route(on_hello, 1),
    "send": Route(on_message, 0),
    "edit": Route(on_message, 0),
    "delete": Route(on_message, 0),
    "react": Route(on_message, 0),
    "pin": Route(on_message, 0),
    "unpin": Route(on_message, 0),
    "ack": Route(on_ack, 1),
    "read": Route(on_read, 1),
    "typing": Route(on_typing, 1),
    "heartbeat": Route(on_heartbeat, 1),
    "presence.subscribe": Route(on_presence_subscribe, PRESENCE_SUBSCRIBE_COST),
}
assert set(HANDLERS) == set(CLIENT_FRAME_TYPES), "every client frame type has one handler"
