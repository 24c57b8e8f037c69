"""The HTTP half of the protocol: accounts, devices, channels, history, search, friends,
presence, push endpoints and discovery (docs/protocol.md, "HTTP API")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote

import httpx
import orjson

from parley_client.errors import ApiError
from parley_client.models import (
    Account,
    Authenticated,
    Channel,
    Friend,
    FriendRequest,
    Level,
    Login,
    Message,
    NotificationsFrame,
    Operator,
    Presence,
    PushEndpoint,
    Receipt,
    Report,
    ReportReason,
    SearchResults,
    UserCard,
)
from parley_client.session import Session

HISTORY_PAGE_MAX = 100


def _segment(text: str) -> str:
    """One path segment, percent-encoded, dots too: a value pasted in (an invite code) can
    neither add segments nor walk up with `..`."""
    return quote(text, safe="").replace(".", "%2E") or "%20"


def ws_url_of(base_url: str) -> str:
    """The WebSocket endpoint of the gateway at `base_url` (`http://h:p` -> `ws://h:p/v1/ws`)."""
    scheme, _, rest = base_url.rstrip("/").partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/v1/ws"


class Client:
    """An HTTP client of one gateway, and the factory of its WebSocket sessions.

    Calls that need a token take the device they act as (a `Login`, or any object with a
    `token`), so one client serves any number of users. A call answered with an error raises
    `ApiError`. With `retries`, a call that failed in transport or with a 5xx is tried again
    (with a growing pause): for load generators on a busy machine, not for tests of errors.

    Sessions opened by `connect` are closed with the client (`aclose`, or `async with`)."""

    def __init__(
        self,
        base_url: str,
        ws_url: str | None = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 0,
        max_connections: int | None = None,
        trust_env: bool = True,
        keep_frames: bool = False,
    ) -> None:
        self.base_url = base_url
        self.ws_url = ws_url or ws_url_of(base_url)
        self.retries = retries
        self.trust_env = trust_env
        self.keep_frames = keep_frames
        limits = (
            httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            if max_connections
            else httpx.Limits()
        )
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, trust_env=trust_env, limits=limits
        )
        self._sessions: list[Session] = []
        self._prune_at = 16

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, []
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        await self.http.aclose()

    # --- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: Authenticated | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        """One request as it is, whatever the answer (no retries, nothing raised for a status):
        for what the typed calls do not cover, such as a deliberately malformed body (`content`,
        sent as `content_type`)."""
        headers = {"authorization": f"Bearer {auth.token}"} if auth is not None else {}
        if content is not None:
            headers["content-type"] = content_type
        return await self.http.request(
            method, path, headers=headers, json=json, params=params, content=content
        )

    async def _call(
        self,
        method: str,
        path: str,
        auth: Authenticated | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """The decoded body of a successful call (None for 204); ApiError otherwise."""
        attempt = 0
        while True:
            try:
                response = await self.request(method, path, auth=auth, json=json, params=params)
            except httpx.TransportError:  # a busy server may drop a connection
                if attempt >= self.retries:
                    raise
            else:
                if response.is_success:
                    return response.json() if response.content else None
                if response.status_code < 500 or attempt >= self.retries:
                    raise ApiError.from_response(response)
            attempt += 1
            await asyncio.sleep(0.5 * attempt)

    # --- accounts and devices ---------------------------------------------------------------

    async def sign_up(
        self, username: str, password: str, display_name: str | None = None
    ) -> Account:
        body: dict[str, str] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        data = await self._call("POST", "/v1/users", json=body)
        return Account(data["user_id"], data["username"])

    async def log_in(self, username: str, password: str, device_name: str | None = None) -> Login:
        """A new device of the user, with its own token."""
        body = {"username": username, "password": password, "device_name": device_name}
        data = await self._call("POST", "/v1/sessions", json=body)
        return Login(data["user_id"], data["device_id"], data["token"], username)

    async def find_user(self, auth: Authenticated, username: str) -> UserCard:
        """The user with this username (`not_found` if none, or if a block stands between)."""
        data = await self._call("GET", "/v1/users", auth, params={"username": username})
        return cast(UserCard, data)

    async def user(self, auth: Authenticated, user_id: str) -> UserCard:
        """A user's profile (`not_found` unless the caller may see it: their own, a group
        co-member's, a friend's or request's, a direct contact's, and no block between)."""
        data = await self._call("GET", f"/v1/users/{user_id}", auth)
        return cast(UserCard, data)

    async def users(self, auth: Authenticated, user_ids: Sequence[str]) -> list[UserCard]:
        """The profiles the caller may see among up to 100 `user_ids`, in the order asked."""
        data = await self._call("GET", "/v1/users", auth, params={"ids": ",".join(user_ids)})
        return cast(list[UserCard], data["users"])

    async def set_display_name(self, auth: Authenticated, display_name: str | None) -> UserCard:
        """Set the caller's display name (1-64 characters, stored NFC), or clear it (None)."""
        body = {"display_name": display_name}
        return cast(UserCard, await self._call("PATCH", "/v1/users/me", auth, json=body))

    async def log_out(self, auth: Authenticated) -> None:
        """Revokes the token; the device's sockets close (4001) on every gateway."""
        await self._call("DELETE", "/v1/sessions/current", auth)

    async def renew(self, auth: Authenticated) -> dict[str, Any]:
        """A new token for this device (`token`, `expires_at`); the old one stops working. Open
        sockets of the device stay open until the new `expires_at`."""
        data: dict[str, Any] = await self._call("POST", "/v1/sessions/current/renew", auth)
        return data

    async def devices(self, auth: Authenticated) -> list[dict[str, Any]]:
        """The account's devices not revoked, oldest first (`current` marks this one), each
        with `expired` (its `expires_at` has passed, by this machine's clock): an expired device
        is listed so that it can be revoked."""
        data = await self._call("GET", "/v1/devices", auth)
        now = datetime.now(UTC)
        devices = list(data["devices"])
        for device in devices:
            expires_at = datetime.fromisoformat(device["expires_at"].replace("Z", "+00:00"))
            device.setdefault("expired", expires_at <= now)
        return devices

    async def revoke_device(self, auth: Authenticated, device_id: str | None = None) -> None:
        """Revokes one device of the account, or every one (this included) when none is given;
        their sockets close (4001) on every gateway."""
        path = "/v1/devices" if device_id is None else f"/v1/devices/{device_id}"
        await self._call("DELETE", path, auth)

    async def export(self, auth: Authenticated) -> AsyncIterator[dict[str, Any]]:
        """The account's data, a line at a time as the server streams it (docs/protocol.md,
        Export): `export`, `account`, `settings`, `device`…, `channel`…, `message`…, and last
        `end` (an export without it was cut short). `rate_limited` past the account's share."""
        headers = {"authorization": f"Bearer {auth.token}"}
        async with self.http.stream("GET", "/v1/users/me/export", headers=headers) as response:
            if not response.is_success:
                await response.aread()
                raise ApiError.from_response(response)
            async for line in response.aiter_lines():
                if line:
                    yield cast(dict[str, Any], orjson.loads(line))

    async def discovery(self, auth: Authenticated) -> list[str]:
        """The WebSocket URLs of the live gateways, best first for this user."""
        data = await self._call("GET", "/v1/discovery", auth)
        return [str(g["url"]) for g in data["gateways"]]

    # --- channels and history ---------------------------------------------------------------

    async def open_direct(self, auth: Authenticated, user_id: str) -> Channel:
        """The direct channel with `user_id`, created the first time (one per pair)."""
        data = await self._call(
            "POST", "/v1/channels", auth, {"type": "direct", "user_id": user_id}
        )
        return cast(Channel, data)

    async def create_group(
        self,
        auth: Authenticated,
        name: str,
        member_ids: Iterable[str],
        history_visible: bool = True,
    ) -> Channel:
        """A group of the caller (its owner) and `member_ids`; members who join later see its
        past unless `history_visible` is false. Refused whole (`not_allowed`) if any of them
        does not let the caller add them to groups."""
        body = {
            "type": "group",
            "name": name,
            "member_ids": list(member_ids),
            "history_visible": history_visible,
        }
        return cast(Channel, await self._call("POST", "/v1/channels", auth, body))

    async def set_history_visible(
        self, auth: Authenticated, channel_id: str, visible: bool
    ) -> Channel:
        """Whether members who join the group later see its past (owners and admins)."""
        body = {"history_visible": visible}
        return cast(Channel, await self._call("PATCH", f"/v1/channels/{channel_id}", auth, body))

    async def channels(self, auth: Authenticated) -> list[Channel]:
        """The caller's channels, each with its `last_message_id`."""
        return cast(list[Channel], (await self._call("GET", "/v1/channels", auth))["channels"])

    async def set_notifications(
        self,
        auth: Authenticated,
        channel_id: str,
        level: Level = "all",
        muted_until: str | None = None,
    ) -> NotificationsFrame:
        """Set the caller's notification settings for a channel: `level` (all, mentions,
        none) and `muted_until` (an ISO 8601 time with offset until which only mentions
        notify; None: not muted). Every device of the caller gets a `notifications` frame."""
        body = {"level": level, "muted_until": muted_until}
        path = f"/v1/channels/{channel_id}/notifications"
        return cast(NotificationsFrame, await self._call("PUT", path, auth, body))

    async def receipts(self, auth: Authenticated, channel_id: str) -> list[Receipt]:
        """How far each member who shares receipts has read, furthest first."""
        data = await self._call("GET", f"/v1/channels/{channel_id}/receipts", auth)
        return cast(list[Receipt], data["receipts"])

    async def settings(self, auth: Authenticated) -> dict[str, Any]:
        """The account's settings (`read_receipts`, `group_adds`)."""
        return cast(dict[str, Any], await self._call("GET", "/v1/settings", auth))

    async def share_receipts(self, auth: Authenticated, shared: bool) -> None:
        """Turn the account's read receipts on or off."""
        await self._call("PUT", "/v1/settings", auth, {"read_receipts": shared})

    async def allow_group_adds(self, auth: Authenticated, who: str) -> None:
        """Who may add the account to groups: `everyone`, `friends` (the default) or `nobody`.
        Adding a user who does not allow it is refused with `not_allowed`."""
        await self._call("PUT", "/v1/settings", auth, {"group_adds": who})

    async def add_member(self, auth: Authenticated, channel_id: str, user_id: str) -> None:
        await self._call("POST", f"/v1/channels/{channel_id}/members", auth, {"user_id": user_id})

    async def remove_member(self, auth: Authenticated, channel_id: str, user_id: str) -> None:
        """Removes `user_id` from the group; a member removes itself to leave."""
        await self._call("DELETE", f"/v1/channels/{channel_id}/members/{user_id}", auth)

    async def set_role(self, auth: Authenticated, channel_id: str, user_id: str, role: str) -> None:
        """Makes a group member `owner`, `admin` or `member` (owners; admins make admins)."""
        path = f"/v1/channels/{channel_id}/members/{user_id}"
        await self._call("PUT", path, auth, json={"role": role})

    # --- invite links -------------------------------------------------------------------------

    async def create_invite(
        self,
        auth: Authenticated,
        channel_id: str,
        *,
        expires_in_s: int | None = None,
        max_uses: int | None = None,
    ) -> dict[str, Any]:
        """A new invite link to the group (owners and admins), with its `code`: shown this
        once, never again (only its first characters, `code_prefix`, in `invites`)."""
        given = {"expires_in_s": expires_in_s, "max_uses": max_uses}
        body = {k: v for k, v in given.items() if v is not None}
        data = await self._call("POST", f"/v1/channels/{channel_id}/invites", auth, body)
        return cast(dict[str, Any], data)

    async def invites(self, auth: Authenticated, channel_id: str) -> list[dict[str, Any]]:
        """The group's invite links, oldest first (owners and admins)."""
        data = await self._call("GET", f"/v1/channels/{channel_id}/invites", auth)
        return cast(list[dict[str, Any]], data["invites"])

    async def revoke_invite(self, auth: Authenticated, channel_id: str, invite_id: str) -> None:
        """Revokes one of the group's invite links: it stops working at once."""
        await self._call("DELETE", f"/v1/channels/{channel_id}/invites/{invite_id}", auth)

    async def preview_invite(self, auth: Authenticated, code: str) -> dict[str, Any]:
        """The group an invite link leads to: `channel_id`, `name`, `member_count`, `member`."""
        return cast(dict[str, Any], await self._call("GET", f"/v1/invites/{_segment(code)}", auth))

    async def join_by_invite(self, auth: Authenticated, code: str) -> Channel:
        """Joins the group of an invite link; answers the group, as `channels` lists it."""
        path = f"/v1/invites/{_segment(code)}/join"
        return cast(Channel, await self._call("POST", path, auth))

    async def history(
        self,
        auth: Authenticated,
        channel_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        around: str | None = None,
        limit: int | None = None,
        thread: str | None = None,
    ) -> list[Message]:
        """One page of the channel's messages, ascending by id: the newest without a cursor.
        With `thread`, the replies to that message only (paged with `before` or `after`)."""
        given = {
            "before": before,
            "after": after,
            "around": around,
            "limit": limit,
            "thread": thread,
        }
        params = {k: v for k, v in given.items() if v is not None}
        data = await self._call("GET", f"/v1/channels/{channel_id}/messages", auth, params=params)
        return cast(list[Message], data["messages"])

    async def pins(self, auth: Authenticated, channel_id: str) -> list[Message]:
        """The channel's pinned messages, the most recently pinned first."""
        data = await self._call("GET", f"/v1/channels/{channel_id}/pins", auth)
        return cast(list[Message], data["messages"])

    async def all_history(self, auth: Authenticated, channel_id: str) -> list[Message]:
        """Every message of the channel, oldest first, a page at a time."""
        out: list[Message] = []
        after = "1"  # ids are positive: after 1 is from the start
        while True:
            page = await self.history(auth, channel_id, after=after, limit=HISTORY_PAGE_MAX)
            out += page
            if len(page) < HISTORY_PAGE_MAX:
                return out
            after = page[-1]["message_id"]

    async def last_message_ids(self, auth: Authenticated) -> dict[str, str]:
        """The newest message id of each of the caller's channels that has one: what
        `hello.cursors` takes to sync nothing already sent."""
        return {
            c["channel_id"]: c["last_message_id"]
            for c in await self.channels(auth)
            if c["last_message_id"] is not None
        }

    # --- search -----------------------------------------------------------------------------

    async def search(
        self,
        auth: Authenticated,
        q: str,
        channel_id: str | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> SearchResults:
        """One page of the caller's messages that hold every word of `q`, newest first, each
        with its channel and a snippet; in `channel_id` only if given, older than `before` (a
        page's `next_before`) if given. `invalid` for a `q` not 1-200 characters or with nothing
        to search in it, `not_member` for a channel not theirs, `too_broad` when the query
        runs out of time. A message just sent may not be indexed yet."""
        given = {"q": q, "channel_id": channel_id, "before": before, "limit": limit}
        params = {k: v for k, v in given.items() if v is not None}
        return cast(SearchResults, await self._call("GET", "/v1/search", auth, params=params))

    # --- friends and presence ---------------------------------------------------------------

    # --- moderation ---------------------------------------------------------------------------

    async def report(
        self,
        auth: Authenticated,
        channel_id: str,
        message_id: str,
        reason: ReportReason,
        note: str | None = None,
    ) -> Report:
        """Reports a message to the group's owners and admins and to the operator; reporting
        it again answers the first report."""
        body: dict[str, Any] = {"reason": reason}
        if note is not None:
            body["note"] = note
        path = f"/v1/channels/{channel_id}/messages/{message_id}/reports"
        return cast(Report, await self._call("POST", path, auth, json=body))

    async def channel_reports(
        self, auth: Authenticated, channel_id: str, *, before: str | None = None, limit: int = 50
    ) -> list[Report]:
        """A group's reports, newest first (its owners and admins only)."""
        params: dict[str, str | int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        found = await self._call("GET", f"/v1/channels/{channel_id}/reports", auth, params=params)
        return cast(list[Report], found["reports"])

    async def admin_reports(
        self, operator: Operator, *, before: str | None = None, limit: int = 50
    ) -> list[Report]:
        """Operator: every report, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        found = await self._call("GET", "/v1/admin/reports", operator, params=params)
        return cast(list[Report], found["reports"])

    async def suspend(self, operator: Operator, user_id: str) -> None:
        """Operator: suspend a user (their sockets close, their tokens and log-ins are refused)."""
        await self._call("PUT", f"/v1/admin/users/{user_id}/suspension", operator)

    async def unsuspend(self, operator: Operator, user_id: str) -> None:
        """Operator: lift a user's suspension."""
        await self._call("DELETE", f"/v1/admin/users/{user_id}/suspension", operator)

    async def delete_messages_of(
        self, operator: Operator, user_id: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """Operator: delete a page of a user's messages: `{"deleted": n, "next": cursor}`; call
        again with `after=next` until `next` is None."""
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        path = f"/v1/admin/users/{user_id}/messages/delete"
        return cast(dict[str, Any], await self._call("POST", path, operator, params=params))

    async def befriend(self, auth: Authenticated, user_id: str) -> FriendRequest:
        """Asks `user_id` to be friends, or accepts their request (`status` says which)."""
        return cast(FriendRequest, await self._call("PUT", f"/v1/friends/{user_id}", auth))

    async def unfriend(self, auth: Authenticated, user_id: str) -> None:
        """Ends the friendship, cancels the caller's request, or declines theirs."""
        await self._call("DELETE", f"/v1/friends/{user_id}", auth)

    async def block(self, auth: Authenticated, user_id: str) -> None:
        """Blocks `user_id`: no direct channel, message, group add, friendship or presence
        between the two; any friendship or request ends."""
        await self._call("PUT", f"/v1/blocks/{user_id}", auth)

    async def unblock(self, auth: Authenticated, user_id: str) -> None:
        await self._call("DELETE", f"/v1/blocks/{user_id}", auth)

    async def blocks(self, auth: Authenticated) -> list[str]:
        """The user ids this account blocks, oldest first."""
        data = await self._call("GET", "/v1/blocks", auth)
        return [b["user_id"] for b in data["blocks"]]

    async def friends(self, auth: Authenticated) -> list[Friend]:
        return cast(list[Friend], (await self._call("GET", "/v1/friends", auth))["friends"])

    async def presence(self, auth: Authenticated, user_ids: Iterable[str]) -> list[Presence]:
        """The presence of friends and channel co-members, in the order asked."""
        params = {"user_ids": ",".join(user_ids)}
        data = await self._call("GET", "/v1/presence", auth, params=params)
        return cast(list[Presence], data["presence"])

    # --- push endpoints ---------------------------------------------------------------------

    async def register_push(self, auth: Authenticated, platform: str, token: str) -> PushEndpoint:
        """Where this device's push notifications go (replacing its previous endpoint)."""
        body = {"platform": platform, "token": token}
        return cast(PushEndpoint, await self._call("PUT", "/v1/push/endpoints/current", auth, body))

    async def unregister_push(self, auth: Authenticated) -> None:
        await self._call("DELETE", "/v1/push/endpoints/current", auth)

    async def push_endpoints(self, auth: Authenticated) -> list[PushEndpoint]:
        """The endpoints of all the user's live devices."""
        data = await self._call("GET", "/v1/push/endpoints", auth)
        return cast(list[PushEndpoint], data["endpoints"])

    # --- operations -------------------------------------------------------------------------

    async def healthz(self) -> dict[str, Any]:
        """`{"status": "ok", "connections": N}` on a gateway."""
        return cast(dict[str, Any], await self._call("GET", "/healthz"))

    async def metrics(self) -> str:
        """The Prometheus text of `/metrics`."""
        response = await self.http.get("/metrics")
        if not response.is_success:
            raise ApiError.from_response(response)
        return response.text

    # --- sessions ---------------------------------------------------------------------------

    async def open(self, url: str | None = None) -> Session:
        """A socket to the gateway (`url`, or this client's `ws_url`) that has said nothing:
        send `hello` with `Session.send_hello`, or whatever a test of the handshake needs."""
        session = await Session.open(
            url or self.ws_url,
            proxy=True if self.trust_env else None,
            keep_frames=self.keep_frames,
        )
        self._keep(session)
        return session

    async def connect(
        self,
        auth: Authenticated,
        cursors: Mapping[str, str] | None = None,
        url: str | None = None,
        *,
        timeout_s: float = 60.0,
    ) -> Session:
        """A session that said hello, got `welcome` and finished its sync (`synced`)."""
        session = await Session.connect(
            url or self.ws_url,
            auth.token,
            cursors,
            timeout_s=timeout_s,
            proxy=True if self.trust_env else None,
            keep_frames=self.keep_frames,
        )
        self._keep(session)
        return session

    def _keep(self, session: Session) -> None:
        # Closed sessions are let go whenever the list has doubled, so a long-lived client
        # does not accumulate them and each connect costs O(1) on average.
        if len(self._sessions) >= self._prune_at:
            self._sessions = [s for s in self._sessions if s.is_open]
            self._prune_at = 2 * len(self._sessions) + 16
        self._sessions.append(session)
