"""A real HTTP server standing in for an operator's push relay: it records every request the
webhook provider makes, and can be told to fail a user's first attempts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def push(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(self.body)
        return loaded


class PushReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._fail: Counter[str] = Counter()  # user id -> attempts still to answer 503
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                user_id = orjson.loads(body).get("user_id", "")
                with receiver._lock:
                    status = 503 if receiver._fail[user_id] > 0 else 200
                    receiver._fail[user_id] -= 1
                    receiver.requests.append(Received(dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/push"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def fail_first(self, user_id: str, attempts: int) -> None:
        with self._lock:
            self._fail[user_id] = attempts

    def of_user(self, user_id: str) -> list[Received]:
        """Every request made for the user, in arrival order (retries included)."""
        with self._lock:
            return [r for r in self.requests if r.push["user_id"] == user_id]

    def accepted(self, user_id: str) -> list[dict[str, Any]]:
        """The pushes the receiver accepted for the user."""
        return [r.push for r in self.of_user(user_id) if r.status == 200]

    async def wait_accepted(
        self, user_id: str, count: int, timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        """The user's accepted pushes once there are at least `count`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pushes = self.accepted(user_id)
            if len(pushes) >= count:
                return pushes
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{len(self.accepted(user_id))} pushes for {user_id}, wanted {count}")

    async def wait_channel(
        self, user_id: str, channel_id: str, timeout_s: float = 30
    ) -> dict[str, Any]:
        """The user's first accepted push for the channel, once there is one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for push in self.accepted(user_id):
                if push["channel_id"] == channel_id:
                    return push
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no push for {user_id} in {channel_id}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
