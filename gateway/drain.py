"""Graceful shutdown of a gateway: leave discovery first, then hand the sockets off slowly.

On the first SIGTERM (or Ctrl-C) the gateway
1. announces `down` on the registry, so every gateway stops listing it in discovery at once,
   and gives them half a second to read it;
2. refuses new sockets (accepted, then closed with 1012) from clients holding an old address;
3. closes its sockets with 1012 ("service restart": reconnect through discovery) in slices
   spread over `gateway_drain_s`, so that its clients reconnect to the other gateways as a
   stream rather than a storm;
4. then shuts down as usual: uvicorn stops, pending acks are written, the producer flushes.
A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from schemas.codes import CloseCode

DRAIN_REASON = "gateway draining: reconnect through discovery"
SLICE_S = 0.1
LEAVE_GRACE_S = 0.5

log = logging.getLogger("parley.gateway")


async def drain(app: Starlette, over_s: float) -> None:
    """Steps 1-3 above; returns once every socket was told to go."""
    services = app.state.services
    app.state.draining = True
    try:
        await asyncio.wait_for(services.gateways.leave(), 5)
    except Exception:
        log.exception("announcing the drain failed; the registry drops this gateway by ttl")
    await asyncio.sleep(min(LEAVE_GRACE_S, over_s))  # for the other gateways to read it
    connections = services.registry.all()
    slices = max(math.ceil(over_s / SLICE_S), 1)
    size = max(math.ceil(len(connections) / slices), 1)
    log.warning("draining %d sockets over %.1f s", len(connections), over_s)
    for start in range(0, len(connections), size):
        for connection in connections[start : start + size]:
            connection.kill(CloseCode.SERVICE_RESTART, DRAIN_REASON)
        await asyncio.sleep(SLICE_S)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining `app` on the first exit signal before shutting down."""

    def __init__(self, config: uvicorn.Config, app: Starlette, drain_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_s = drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._draining is not None or not self.started:
            super().handle_exit(sig, frame)  # a second signal, or not serving yet: stop now
            return
        self._loop.call_soon_threadsafe(self._start_drain, sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        async def run() -> None:
            try:
                await drain(self._app, self._drain_s)
            except Exception:
                log.exception("draining failed")
            finally:
                super(DrainingServer, self).handle_exit(sig, frame)

        if self._draining is None:
            self._draining = asyncio.create_task(run(), name="drain")
