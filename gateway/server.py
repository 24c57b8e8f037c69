"""Runs a gateway process under uvicorn (wsproto WebSockets: the least memory per idle socket)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from parley.settings import Settings
from schemas.limits import MAX_FRAME_BYTES


def serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        ws="wsproto",
        # Frames between MAX_FRAME_BYTES and twice that are read and answered `too_large` with
        # the socket kept open; larger ones are refused by the transport (close 1009).
        ws_max_size=2 * MAX_FRAME_BYTES,
        ws_ping_interval=None,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
