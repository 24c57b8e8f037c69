"""A test client of the public protocol: HTTP API calls and WebSocket sessions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    token: str
    username: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass
class Socket:
    """One WebSocket session; every frame received is kept in `frames`."""

    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    _seen: int = 0

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(body).decode())

    async def send_text(self, channel_id: str, text: str, client_msg_id: str | None = None) -> str:
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send(
            {"type": "send", "client_msg_id": client_msg_id, "channel_id": channel_id, "text": text}
        )
        return client_msg_id

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame not yet returned by `next`/`until`."""
        while self._seen >= len(self.frames):
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            self.frames.append(orjson.loads(raw))
        frame = self.frames[self._seen]
        self._seen += 1
        return frame

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """Skip frames until one matches."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(deadline - time.monotonic(), 0.001))
            if predicate(frame):
                return frame

    async def collect_messages(
        self, channel_id: str, count: int, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until `count` message frames of the channel arrived; returns all of them so far."""
        deadline = time.monotonic() + timeout
        have = len(self.messages(channel_id))  # counted as frames arrive: no rescan per frame
        while have < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {have} of {count} messages in {channel_id}")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                continue
            frame = orjson.loads(raw)
            self.frames.append(frame)
            if frame["type"] == "message" and frame["channel_id"] == channel_id:
                have += 1
        return self.messages(channel_id)

    async def settle(self, quiet_s: float = 0.5) -> None:
        """Read until no frame arrived for `quiet_s` (to catch late duplicates)."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), quiet_s)
            except TimeoutError:
                return
            self.frames.append(orjson.loads(raw))

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        return [
            f
            for f in self.frames
            if f["type"] == "message" and (channel_id is None or f["channel_id"] == channel_id)
        ]

    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "error"]

    async def close(self) -> None:
        await self.ws.close()


class Api:
    def __init__(self, base_url: str, ws_url: str, *, ping_interval: float | None = 20) -> None:
        self.base_url = base_url
        self.ws_url = ws_url
        # The client library's keepalive: a pong waits behind every frame queued before it.
        self._ping_interval = ping_interval
        # Generous: password hashing (argon2id) is CPU-bound and the machine may be busy.
        self.http = httpx.AsyncClient(base_url=base_url, timeout=120)
        self._hashing = asyncio.Semaphore(8)
        self._sockets: list[Socket] = []

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for socket in self._sockets:
            await socket.ws.close()
        await self.http.aclose()

    async def signup(self, prefix: str = "u") -> str:
        """A new user; returns the username (the password is PASSWORD)."""
        username = f"{prefix}{uuid.uuid4().hex[:12]}"
        response = await self.http.post(
            "/v1/users", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return username

    async def login(self, username: str, device_name: str | None = None) -> Device:
        response = await self.http.post(
            "/v1/sessions",
            json={"username": username, "password": PASSWORD, "device_name": device_name},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Device(body["user_id"], body["device_id"], body["token"], username)

    async def new_device(self, prefix: str = "u") -> Device:
        # Bounded: a hundred concurrent sign-ups would queue on the server's hashing threads.
        async with self._hashing:
            return await self.login(await self.signup(prefix))

    async def direct(self, device: Device, other_user_id: str) -> str:
        response = await self.http.post(
            "/v1/channels", json={"type": "direct", "user_id": other_user_id}, headers=device.auth
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["channel_id"])

    async def group(self, device: Device, member_ids: list[str], name: str = "group") -> str:
        response = await self.http.post(
            "/v1/channels",
            json={"type": "group", "name": name, "member_ids": member_ids},
            headers=device.auth,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["channel_id"])

    async def history(self, device: Device, channel_id: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"/v1/channels/{channel_id}/messages", params=params, headers=device.auth
        )
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])

    async def all_history(self, device: Device, channel_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = "1"
        while True:
            page = await self.history(device, channel_id, after=after, limit=100)
            out.extend(page)
            if len(page) < 100:
                return out
            after = page[-1]["message_id"]

    async def raw_socket(self, url: str | None = None) -> Socket:
        ws = await websockets.connect(
            url or self.ws_url,
            max_size=None,
            open_timeout=30,
            ping_interval=self._ping_interval,
        )
        socket = Socket(ws)
        self._sockets.append(socket)
        return socket

    async def connect(
        self, device: Device, cursors: dict[str, str] | None = None, url: str | None = None
    ) -> Socket:
        """A socket that said hello and finished its sync."""
        socket = await self.raw_socket(url)
        hello: dict[str, Any] = {"type": "hello", "token": device.token}
        if cursors is not None:
            hello["cursors"] = cursors
        await socket.send(hello)
        welcome = await socket.next()
        assert welcome["type"] == "welcome", welcome
        await socket.until(lambda f: f["type"] == "synced", timeout=60)
        return socket
