"""WebSocket sessions of the public protocol (`hello` -> `welcome` -> sync -> `synced`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class SessionError(RuntimeError):
    """The server refused or dropped a session before it was synced."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def encode(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


@dataclass
class Synced:
    ws: ClientConnection
    welcome: dict[str, Any]
    sync_messages: int
    seconds: float


async def open_synced(
    url: str, token: str, cursors: dict[str, str] | None, timeout_s: float
) -> Synced:
    """Connect, say hello, read the sync until `synced`. Raises SessionError (or a connection
    error) if anything else happens within `timeout_s`."""
    started = time.monotonic()
    deadline = started + timeout_s
    ws = await connect(
        url,
        compression="deflate",  # offered, as browsers do; the gateway declines it
        max_size=None,
        proxy=None,
        ping_interval=None,
        open_timeout=timeout_s,
        close_timeout=2,
        max_queue=256,
    )
    try:
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if cursors:
            hello["cursors"] = cursors
        await ws.send(encode(hello))
        welcome: dict[str, Any] | None = None
        messages = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionError("timeout", f"not synced after {timeout_s:.0f}s")
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                raise SessionError("timeout", f"not synced after {timeout_s:.0f}s") from None
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                raise SessionError(f"closed_{code}", str(exc)) from None
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "welcome":
                welcome = frame
            elif kind == "message":
                messages += 1
            elif kind == "synced":
                if welcome is None:
                    raise SessionError("protocol", "synced before welcome")
                return Synced(ws, welcome, messages, time.monotonic() - started)
            elif kind == "error":
                raise SessionError(f"error_{frame.get('code')}", str(frame.get("message")))
    except BaseException:
        await abort(ws)
        raise


async def abort(ws: ClientConnection) -> None:
    """Drop the TCP connection without a closing handshake."""
    transport = ws.transport
    if transport is not None:
        transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), 1)


def close_code(ws: ClientConnection) -> int | None:
    """The close code the server sent (1006: the connection dropped without one)."""
    return ws.close_code
