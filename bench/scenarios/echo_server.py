"""The WebSocket echo floor's server: a minimal Starlette app that sends every text frame back,
served exactly as the gateway serves its sockets, so that the floor is what the gateway's server
stack costs with no Parley in it.

It reuses the gateway's own pieces rather than copies of them (`direct_websockets`,
`LeanWSProtocol`, `MAX_FRAME_BYTES`, and the `write_text_now` fast path the gateway's outbox
writes with), and the options of `gateway/server.py`'s `uvicorn.Config`; a change there should
be repeated in `CONFIG` below. Its frames are echoed as they are: no JSON, no checks, no broker.

Run by the bench as `python -m bench.scenarios.echo_server PORT` (its own process, as a gateway is)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.server import direct_websockets
from gateway.wsprotocol import LeanWSProtocol
from schemas.limits import MAX_FRAME_BYTES

PATH = "/echo"

CONFIG: dict[str, Any] = {
    "interface": "asgi3",
    "ws": LeanWSProtocol,
    "ws_max_size": MAX_FRAME_BYTES,
    "ws_ping_interval": None,
    "ws_per_message_deflate": False,
    "http": "httptools",
    "loop": "uvloop",
    "lifespan": "on",
    "proxy_headers": False,
    "log_level": "warning",
    "timeout_graceful_shutdown": 5,
}
"""gateway/server.py's uvicorn options, but for the app, host and port."""


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    write_now: Callable[[str], bool] | None = websocket.scope.get("parley.write_text_now")
    try:
        while True:
            text = await websocket.receive_text()
            # As the gateway's outbox: straight to the transport when it takes it.
            if write_now is None or not write_now(text):
                await websocket.send_text(text)
    except WebSocketDisconnect:
        pass


def app() -> Any:
    return direct_websockets(Starlette(routes=[WebSocketRoute(PATH, echo)]))


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.Server(uvicorn.Config(app(), host="127.0.0.1", port=port, **CONFIG)).run()


if __name__ == "__main__":
    main()
