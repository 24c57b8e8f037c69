"""The HTTP half of the protocol: accounts, sessions, channels, discovery."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.progress import bar as progress_bar

PASSWORD = "bench-password-1"


@dataclass(frozen=True)
class User:
    """One account with one device (one login); its token is shared by all its sockets."""

    index: int
    username: str
    user_id: str
    device_id: str
    token: str


class ApiError(RuntimeError):
    pass


def load_users(path: Path) -> list[User]:
    """Accounts a previous run kept in its data dir (`--data-dir`); none if there is no file."""
    if not path.is_file():
        return []
    return [User(**row) for row in orjson.loads(path.read_bytes())]


def save_users(path: Path, users: list[User]) -> None:
    path.write_bytes(orjson.dumps([asdict(u) for u in users]))


class Api:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(60.0),
            trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(
        self, method: str, path: str, token: str | None = None, body: Any = None, ok: int = 200
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else None
        last: Exception | None = None
        for attempt in range(4):
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:  # a busy server may drop a connection
                last = exc
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code >= 500:
                last = ApiError(f"{method} {path}: {response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code not in (ok, 200, 201, 204):
                raise ApiError(f"{method} {path}: {response.status_code} {response.text[:300]}")
            if response.status_code == 204 or not response.content:
                return {}
            data = response.json()
            if not isinstance(data, dict):
                raise ApiError(f"{method} {path}: not a JSON object")
            return data
        raise ApiError(f"{method} {path} failed after retries: {last}")

    async def new_user(self, index: int, prefix: str) -> User:
        username = f"{prefix}{index:05d}"
        await self._call(
            "POST", "/v1/users", body={"username": username, "password": PASSWORD}, ok=201
        )
        login = await self._call(
            "POST",
            "/v1/sessions",
            body={"username": username, "password": PASSWORD, "device_name": "bench"},
            ok=201,
        )
        return User(index, username, login["user_id"], login["device_id"], login["token"])

    async def create_users(
        self, count: int, concurrency: int, existing: list[User] | None = None
    ) -> list[User]:
        """Sign up and log in users until there are `count`, a few at a time (argon2 costs the
        server ~0.17 s of CPU per signup and per login). `existing` ones (from an earlier run
        on the same data dir) are kept and come first."""
        have = list(existing or [])[:count]
        prefix = f"b{uuid.uuid4().hex[:8]}_"
        semaphore = asyncio.Semaphore(concurrency)
        users: list[User | None] = [*have, *([None] * (count - len(have)))]
        with progress_bar(count - len(have), "users (signup+login)", "user") as bar:

            async def one(i: int) -> None:
                async with semaphore:
                    users[i] = await self.new_user(i, prefix)
                bar.update(1)

            await asyncio.gather(*(one(i) for i in range(len(have), count)))
        return [u for u in users if u is not None]

    async def direct(self, user: User, other: User) -> str:
        body = await self._call(
            "POST", "/v1/channels", user.token, {"type": "direct", "user_id": other.user_id}
        )
        return str(body["channel_id"])

    async def group(self, creator: User, members: list[User], name: str) -> str:
        body = await self._call(
            "POST",
            "/v1/channels",
            creator.token,
            {
                "type": "group",
                "name": name,
                "member_ids": [m.user_id for m in members if m.user_id != creator.user_id],
            },
            ok=201,
        )
        return str(body["channel_id"])

    async def last_message_ids(self, user: User) -> dict[str, str]:
        """The newest message id of each of the user's channels (for `hello.cursors`)."""
        body = await self._call("GET", "/v1/channels", user.token)
        return {
            str(c["channel_id"]): str(c["last_message_id"])
            for c in body.get("channels", [])
            if c.get("last_message_id")
        }

    async def discovery(self, user: User) -> str | None:
        try:
            body = await self._call("GET", "/v1/discovery", user.token)
        except ApiError:
            return None
        gateways = body.get("gateways") or []
        if gateways and isinstance(gateways[0], dict):
            url = gateways[0].get("url")
            return str(url) if url else None
        return None
