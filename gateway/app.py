"""Assembles the gateway: HTTP routes, the WebSocket endpoint, and the services they share."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

from aiokafka.errors import KafkaError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.connection import Connection
from gateway.connections import Registry
from gateway.cursors import CursorWriter
from gateway.drain import DRAIN_REASON
from gateway.encoding import json_response
from gateway.errors import ApiError
from gateway.follower import PartitionFollower
from gateway.http_api import routes
from gateway.inbox import InboxDispatcher
from gateway.memberships import MembershipCache
from gateway.outbox import Budget
from gateway.presence import PresenceHub
from gateway.publisher import Publisher
from gateway.ratelimit import (
    AccountThrottles,
    DeviceLimits,
    ExportGate,
    LoginThrottle,
    Throttle,
    UserBuckets,
)
from gateway.registry import GatewayRegistry
from gateway.search_gate import SearchGate
from gateway.services import Services
from gateway.tokens import Passwords
from schemas.codes import CloseCode
from schemas.settings import Settings
from storage.search import tokens as search_tokens
from storage.stores import open_stores
from topics.definitions import inbox_topic

log = logging.getLogger("parley.gateway")

# The web app (web/ at the repository's top, beside this package: the project installs editable).
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# The JavaScript client library (clients/js/), which the web app imports from /client/.
CLIENT_JS_DIR = Path(__file__).resolve().parent.parent / "clients" / "js" / "src"
# User text is only ever set as text; this keeps any script but the app's own from running,
# and lets a page talk to its own origin only: `connect-src` names the WebSocket origins of the
# host that served it (`'self'` does not cover ws:/wss: in every browser).
WEB_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# A Host header as a browser sends it: a name or an address, and a port. Anything else (a
# forged header) gets `'self'` alone, and never reaches the policy's text.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def web_csp(host: str) -> str:
    """The Content-Security-Policy of a page served for a request to `host` (its Host)."""
    connect = "'self'"
    if _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return WEB_CSP.format(connect=connect)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def security_headers(app: ASGIApp) -> ASGIApp:
    """Every HTTP answer with `X-Content-Type-Options: nosniff`; each under /v1/ (errors too)
    also `Cache-Control: no-store`; each HTML page with the app's Content-Security-Policy."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if api:
                    headers["Cache-Control"] = "no-store"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = web_csp(_header(scope, b"host"))
                    headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await app(scope, receive, send_with_headers)

    return asgi


class Gateway(Starlette):
    """Starlette with `security_headers` around its whole stack, 500s included. Not as a user
    middleware: server.py hands WebSocket upgrades straight to the endpoint only when the app
    has none."""

    def build_middleware_stack(self) -> ASGIApp:
        return security_headers(super().build_middleware_stack())


async def web_index(request: Request) -> Response:
    index = WEB_DIR / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"the web app is not installed ({WEB_DIR} has no index.html)")
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def websocket_endpoint(websocket: WebSocket) -> Awaitable[None]:
    """A socket's whole life: its `Connection`'s run, returned rather than awaited here, so an
    idle socket's chain of suspended coroutines is one frame shorter."""
    if websocket.app.state.draining:
        return _send_elsewhere(websocket)
    return Connection(websocket, websocket.app.state.services).run()


async def _send_elsewhere(websocket: WebSocket) -> None:
    """A client with an old address: send it where discovery points now."""
    await websocket.accept()
    await websocket.close(CloseCode.SERVICE_RESTART, DRAIN_REASON)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid")
    return json_response({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code)


async def broker_error(request: Request, exc: Exception) -> Response:
    """The log did not take a record in time (`send_answer_timeout_s`) or refused it: what the
    request changed in the store stands, and asking again is safe."""
    log.warning("the broker did not take a request's record: %r", exc)
    return json_response(
        {"error": {"code": "internal", "message": "the message log did not answer; try again"}},
        503,
    )


async def server_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        search_tokens.warm()  # before any socket: the first search beyond ASCII stalls none
        stores = await open_stores(settings, search_pool_size=settings.search_pool_size)
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
                Throttle(settings.logins_per_address, settings.throttle_window_s),
                LoginThrottle(
                    settings.logins_per_account_address,
                    settings.logins_per_account,
                    settings.throttle_window_s,
                ),
            ),
            memberships,
            SearchGate(
                settings.search_rate_per_s,
                settings.search_burst,
                settings.search_concurrency,
                settings.search_per_user,
            ),
            UserBuckets(settings.group_add_rate_per_s, settings.group_add_burst),
            UserBuckets(settings.report_rate_per_s, settings.report_burst),
            UserBuckets(settings.invite_rate_per_s, settings.invite_burst),
            ExportGate(settings.exports_per_hour, settings.export_concurrency),
        )
        # What start-up made lives as long as the process: out of the collector's scans.
        gc.freeze()
        try:
            yield
        finally:
            for connection in registry.all():
                connection.kill(CloseCode.GOING_AWAY, "gateway shutting down: reconnect")
            await gateways.stop()
            await cursors.stop()
            await inbox.stop()
            await hub.stop()
            await publisher.stop()
            await stores.close()

    return Gateway(
        routes=[
            *routes,
            WebSocketRoute("/v1/ws", websocket_endpoint),
            Route("/", web_index, methods=["GET"]),
            Mount("/app", StaticFiles(directory=WEB_DIR / "app", check_dir=False), name="app"),
            Mount("/client", StaticFiles(directory=CLIENT_JS_DIR, check_dir=False), name="client"),
        ],
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            KafkaError: broker_error,
            Exception: server_error,
        },
    )
