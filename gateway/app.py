"""Assembles the gateway: HTTP routes, the WebSocket endpoint, and the services they share."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from gateway.connection import CLOSE_GOING_AWAY, Connection
from gateway.connections import Registry
from gateway.cursors import CursorWriter
from gateway.drain import CLOSE_SERVICE_RESTART, DRAIN_REASON
from gateway.encoding import json_response
from gateway.errors import ApiError
from gateway.follower import PartitionFollower
from gateway.http_api import routes
from gateway.inbox import InboxDispatcher
from gateway.memberships import MembershipCache
from gateway.outbox import Budget
from gateway.presence import PresenceHub
from gateway.publisher import Publisher
from gateway.ratelimit import AccountThrottles, DeviceLimits, Throttle
from gateway.registry import GatewayRegistry
from gateway.search_gate import SearchGate
from gateway.services import Services
from gateway.tokens import Passwords
from schemas.settings import Settings
from storage.stores import open_stores
from topics.definitions import inbox_topic

# The web app (web/ at the repository's top, beside this package: the project installs editable).
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# User text is only ever set as text; this keeps any script but the app's own from running.
WEB_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def web_index(request: Request) -> Response:
    index = WEB_DIR / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"the web app is not installed ({WEB_DIR} has no index.html)")
    return FileResponse(
        index, headers={"Content-Security-Policy": WEB_CSP, "Cache-Control": "no-cache"}
    )


async def websocket_endpoint(websocket: WebSocket) -> None:
    if websocket.app.state.draining:
        # A client with an old address: send it where discovery points now.
        await websocket.accept()
        await websocket.close(CLOSE_SERVICE_RESTART, DRAIN_REASON)
        return
    await Connection(websocket, websocket.app.state.services).run()


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid")
    return json_response({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code)


async def server_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stores = await open_stores(settings)
        publisher = Publisher(settings)
        await publisher.start()
        registry = Registry(
            DeviceLimits(
                settings.send_rate_per_s,
                settings.send_burst,
                settings.frame_rate_per_s,
                settings.frame_burst,
            )
        )
        memberships = MembershipCache(
            stores.channels, settings.gateway_membership_ttl_s, settings.gateway_membership_entries
        )
        inbox = PartitionFollower(
            settings, inbox_topic(settings), InboxDispatcher(registry, memberships)
        )
        await inbox.start()
        hub = PresenceHub(settings, stores.friends)
        await hub.start()
        gateways = GatewayRegistry(settings, registry.count)
        await gateways.start()
        cursors = CursorWriter(stores.cursors, settings.cursor_flush_interval_s)
        cursors.start()
        passwords = Passwords(
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
            settings.max_concurrent_hashes,
            settings.max_waiting_hashes,
        )
        app.state.draining = False
        app.state.services = Services(
            settings,
            stores,
            publisher,
            inbox,
            hub,
            registry,
            cursors,
            gateways,
            passwords,
            Budget(settings.gateway_outbound_bytes),
            AccountThrottles(
                Throttle(settings.signups_per_address, settings.throttle_window_s),
                Throttle(settings.logins_per_account, settings.throttle_window_s),
                Throttle(settings.logins_per_address, settings.throttle_window_s),
            ),
            memberships,
            SearchGate(
                settings.search_rate_per_s, settings.search_burst, settings.search_concurrency
            ),
        )
        # What start-up made lives as long as the process: out of the collector's scans.
        gc.freeze()
        try:
            yield
        finally:
            for connection in registry.all():
                connection.kill(CLOSE_GOING_AWAY, "gateway shutting down: reconnect")
            await gateways.stop()
            await cursors.stop()
            await inbox.stop()
            await hub.stop()
            await publisher.stop()
            await stores.close()

    return Starlette(
        routes=[
            *routes,
            WebSocketRoute("/v1/ws", websocket_endpoint),
            Route("/", web_index, methods=["GET"]),
            Mount("/app", StaticFiles(directory=WEB_DIR / "app", check_dir=False), name="app"),
        ],
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
