"""Runs a gateway process under uvicorn, tuned for many idle WebSockets (SPEC §6).

wsproto WebSockets hold the least memory per idle socket of uvicorn's implementations, and
`LeanWSProtocol` trims them further (gateway/wsprotocol.py). Each idle socket also keeps its
whole chain of suspended coroutines alive, so the chain is kept short: no proxy-headers
middleware (nothing reads the client address), and WebSocket requests go straight to their
endpoint (`direct_websockets`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import uvicorn
from prometheus_client import start_http_server
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.app import create_app
from gateway.drain import DrainingServer
from gateway.wsprotocol import LeanWSProtocol
from schemas.limits import MAX_FRAME_BYTES
from schemas.settings import Settings
from topics import tracing


def direct_websockets(app: Starlette) -> ASGIApp:
    """`app`, with a request for one of its WebSocket routes handed straight to the endpoint.

    Starlette's error and exception middleware, router and route wrappers add eight coroutine
    frames, about 4.7 KiB per idle socket, and do nothing for such a request: the app has no
    middleware of its own (else this returns `app` unchanged), the route's path has no
    parameters, and its endpoint is a plain function that handles its own errors. Every other
    request goes through `app` as usual. It is not a coroutine function itself: it returns the
    endpoint's awaitable for uvicorn to await (`interface="asgi3"`), so no frame of its own
    stays suspended under each socket.
    """
    if app.user_middleware:
        return app
    endpoints: dict[str, Callable[[WebSocket], Awaitable[None]]] = {
        route.path: route.endpoint
        for route in app.routes
        if isinstance(route, WebSocketRoute)
        and "{" not in route.path
        and inspect.isfunction(route.endpoint)
    }

    def asgi(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        endpoint = endpoints.get(scope["path"]) if scope["type"] == "websocket" else None
        if endpoint is None:
            return app(scope, receive, send)
        scope["app"] = app  # what Starlette sets; the endpoint reads `websocket.app.state`
        # The socket's protocol, for writing frames without a task each (gateway/outbox.py).
        scope["parley.write_text_now"] = getattr(
            getattr(send, "__self__", None), "write_text_now", None
        )
        return endpoint(WebSocket(scope, receive, send))

    return asgi


def serve(settings: Settings) -> None:
    app = create_app(settings)
    if settings.metrics_port is not None:
        # prometheus_client's own server, in a thread: scrapes never wait on the event loop.
        start_http_server(settings.metrics_port, settings.metrics_host)
    config = uvicorn.Config(
        direct_websockets(app),
        interface="asgi3",  # `direct_websockets` returns an awaitable: not a coroutine function
        host=settings.http_host,
        port=settings.http_port,
        ws=LeanWSProtocol,
        # Frames up to MAX_FRAME_BYTES are read whole and judged on their decoded text; larger
        # ones are dropped as they arrive and answered `too_large` (gateway/wsprotocol.py).
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=None,
        # Browsers offer permessage-deflate on every socket. Accepted, it keeps a zlib stream
        # per direction per socket (hundreds of KiB each) to shrink chat lines of a few hundred
        # bytes, and every frame is compressed once per socket instead of encoded once.
        ws_per_message_deflate=False,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    # Spans exported where OTEL_EXPORTER_OTLP_ENDPOINT points; off when it is unset.
    tracing.start("parley-gateway")
    try:
        DrainingServer(config, app, settings.gateway_drain_s).run()
    finally:
        tracing.stop()
