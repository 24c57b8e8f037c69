"""A WebSocket session that stays connected for an interactive client: it connects where
discovery says, heartbeats, and after a drop reconnects with capped, jittered backoff, resuming
every channel from the last message it had (`hello.cursors`: no gap, no duplicate). Sends,
edits, deletes and reactions not yet `accepted` are sent again with their `client_msg_id` (one
row all the same), and the presence subscription is renewed (it belongs to a socket)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from parley_client.codes import CloseCode
from parley_client.errors import ApiError, SessionError
from parley_client.http import Client
from parley_client.models import Authenticated, Frame
from parley_client.session import Session

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
CONNECT_TIMEOUT_S = 15.0
ROWS = frozenset({"message", "edit", "delete", "reaction", "pin", "unpin"})
"""The frames that are rows of a channel: one id sequence, delivered and synced alike."""

Command = Callable[[Session], Awaitable[object]]
"""A frame sent with a `client_msg_id` of its own, as the socket sends it (again)."""


class LoggedOut(Exception):
    """The token is no longer valid (4001, or `unauthorized`): the user must log in again. Also
    when an operator suspended the account (4003, or `suspended`): trying again cannot help."""


SUSPENDED = "this account is suspended by the operator"


@dataclass(slots=True)
class Handlers:
    """What the session tells its owner: each new frame, and each change of connection."""

    frame: Callable[[Frame], Awaitable[None]]
    status: Callable[[str], None]


async def connect_first(
    urls: Iterable[str], token: str, cursors: Mapping[str, str] | None = None
) -> Session:
    """A synced session on the first of `urls` that answers (the sync's frames are not kept:
    for commands that only send). LoggedOut if the token is refused."""
    failures: list[str] = []
    for url in urls:
        try:
            return await Session.connect(url, token, cursors, timeout_s=CONNECT_TIMEOUT_S)
        except SessionError as exc:
            if exc.kind == "error_suspended" or exc.close_code == CloseCode.SUSPENDED:
                raise LoggedOut(SUSPENDED) from None
            if exc.kind == "error_unauthorized" or exc.close_code == CloseCode.UNAUTHORIZED:
                raise LoggedOut("the token was refused: log in again") from None
            failures.append(f"{url}: {exc.kind}")
    raise SessionError("unreachable", "no gateway answered: " + "; ".join(failures))


async def gateways(client: Client, auth: Authenticated, known: list[str]) -> list[str]:
    """Discovery's list, best first; when the HTTP API cannot be reached, the last list known,
    then the client's own gateway."""
    try:
        return await client.discovery(auth)
    except (httpx.TransportError, ApiError) as exc:
        if isinstance(exc, ApiError) and exc.status == 401:
            raise LoggedOut("the token was refused: log in again") from None
        if isinstance(exc, ApiError) and exc.code == "suspended":
            raise LoggedOut(SUSPENDED) from None
        return list(dict.fromkeys([*known, client.ws_url]))


class ReconnectingSession:
    """One user's live connection, for as long as `run` runs. Frames reach `handlers.frame`
    in order, each `message` once (the cursors drop anything already had)."""

    def __init__(
        self,
        client: Client,
        auth: Authenticated,
        cursors: Mapping[str, str | None],
        handlers: Handlers,
    ) -> None:
        self.client = client
        self.auth = auth
        self.handlers = handlers
        self.cursors: dict[str, str] = {c: m for c, m in cursors.items() if m is not None}
        """channel_id -> the newest message_id had: where a reconnect resumes."""
        self.pending: dict[str, Command] = {}
        """client_msg_id -> the send or change not yet accepted, to send again."""
        self.watching: list[str] = []
        self.session: Session | None = None
        self.device_id: str | None = None
        self.synced = asyncio.Event()
        """Set while a socket is open and past its sync."""
        self._urls: list[str] = []
        self._interval_s = 15.0

    # --- what the owner asks ---------------------------------------------------------------

    async def send(self, channel_id: str, text: str, reply_to: str | None = None) -> str:
        """Send now if connected, else after the reconnect (with `reply_to`, a reply to that
        message of the channel); returns the `client_msg_id`."""
        client_msg_id = uuid.uuid4().hex
        return await self._command(
            client_msg_id,
            lambda s: s.send_message(channel_id, text, client_msg_id, reply_to=reply_to),
        )

    async def edit(self, channel_id: str, message_id: str, text: str) -> str:
        """Edit one of the user's messages, as `send` sends (answered by `accepted`, then the
        `edit` row); returns the `client_msg_id`."""
        client_msg_id = uuid.uuid4().hex
        return await self._command(
            client_msg_id, lambda s: s.edit(channel_id, message_id, text, client_msg_id)
        )

    async def delete(self, channel_id: str, message_id: str) -> str:
        client_msg_id = uuid.uuid4().hex
        return await self._command(
            client_msg_id, lambda s: s.delete(channel_id, message_id, client_msg_id)
        )

    async def pin(self, channel_id: str, message_id: str, unpin: bool = False) -> str:
        """Pin (with `unpin`, unpin) a message, as `send` sends; returns the `client_msg_id`."""
        client_msg_id = uuid.uuid4().hex
        return await self._command(
            client_msg_id,
            lambda s: s.pin(channel_id, message_id, unpin=unpin, client_msg_id=client_msg_id),
        )

    async def react(self, channel_id: str, message_id: str, emoji: str, removed: bool) -> str:
        client_msg_id = uuid.uuid4().hex
        return await self._command(
            client_msg_id,
            lambda s: s.react(
                channel_id, message_id, emoji, removed=removed, client_msg_id=client_msg_id
            ),
        )

    async def typing(self, channel_id: str) -> None:
        """The user is typing in the channel (never resent: it is stale by the reconnect)."""
        await self._try(lambda s: s.typing(channel_id))

    async def ack(self, channel_id: str, message_id: str) -> None:
        """This device has had the channel up to `message_id`: its stored sync cursor (a lost
        ack is harmless: this session's reconnects resume from `cursors` anyway)."""
        await self._try(lambda s: s.ack(channel_id, message_id))

    async def read(self, channel_id: str, message_id: str) -> None:
        """The user has read the channel up to `message_id` (their read marker, on every
        device; a lost one is sent again with the next message read)."""
        await self._try(lambda s: s.read(channel_id, message_id))

    async def watch(self, user_ids: list[str]) -> None:
        """Watch these users' presence (none: stop), now and after every reconnect."""
        self.watching = user_ids
        await self._try(lambda s: s.subscribe_presence(user_ids))

    def add_channel(self, channel_id: str, last_message_id: str | None) -> None:
        """A channel joined or opened since the start: resume it from its newest message."""
        if last_message_id is not None and channel_id not in self.cursors:
            self.cursors[channel_id] = last_message_id

    # --- the connection ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, read, reconnect; returns never, raises LoggedOut."""
        delay = BACKOFF_FIRST_S
        connected_before = False
        while True:
            problem = "not connected"
            try:
                session = await self._connect()
            except SessionError as exc:
                problem = f"cannot connect ({exc.kind})"
            else:
                if connected_before:
                    self.handlers.status("reconnected")
                connected_before = True
                try:
                    await self._serve(session)
                except SessionError as exc:
                    if exc.close_code == CloseCode.UNAUTHORIZED:
                        raise LoggedOut("this device was logged out: log in again") from None
                    if exc.close_code == CloseCode.SUSPENDED:
                        raise LoggedOut(SUSPENDED) from None
                    problem = f"connection lost ({exc.kind})"
                finally:
                    served = self.synced.is_set()
                    self.synced.clear()
                    self.session = None
                    await session.abort()
                if served:  # a drop after a sync starts the backoff afresh
                    delay = BACKOFF_FIRST_S
            wait = random.uniform(delay / 2, delay)  # jittered: a fleet does not return at once
            self.handlers.status(f"{problem}; reconnecting in {wait:.1f}s")
            await asyncio.sleep(wait)  # the backoff itself
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def _connect(self) -> Session:
        """Hello on the first gateway that welcomes us, resuming from the cursors."""
        self._urls = await gateways(self.client, self.auth, self._urls)
        failures: list[str] = []
        for url in self._urls:
            try:
                session = await Session.open(url, open_timeout_s=CONNECT_TIMEOUT_S)
            except SessionError as exc:
                failures.append(exc.kind)
                continue
            try:
                await session.send_hello(self.auth.token, self.cursors)
                welcome = await session.next(CONNECT_TIMEOUT_S)
            except (SessionError, TimeoutError) as exc:
                await session.abort()
                failures.append(exc.kind if isinstance(exc, SessionError) else "timeout")
                continue
            if welcome["type"] == "error" and welcome["code"] == "unauthorized":
                await session.abort()
                raise LoggedOut("the token was refused: log in again")
            if welcome["type"] != "welcome":
                await session.abort()
                failures.append(f"protocol ({welcome['type']} before welcome)")
                continue
            self.device_id = str(welcome["device_id"])
            self._interval_s = float(welcome["heartbeat_interval_s"])
            return session
        raise SessionError(failures[-1] if failures else "unreachable", "; ".join(failures))

    async def _serve(self, session: Session) -> None:
        """Renew what belongs to a socket, then read it until it drops."""
        self.session = session
        async with session.heartbeating(self._interval_s):
            for command in list(self.pending.values()):
                await command(session)
            if self.watching:
                await session.subscribe_presence(self.watching)
            while True:
                await self._handle(await session.next(timeout_s=None))

    async def _handle(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind in ROWS:
            channel_id, message_id = frame["channel_id"], frame["message_id"]
            if int(message_id) <= int(self.cursors.get(channel_id, "0")):
                return  # had already: a resend's echo, or a page the sync overlapped
            self.cursors[channel_id] = message_id
            if frame.get("sender_device_id") == self.device_id:
                self.pending.pop(frame["client_msg_id"], None)
        elif kind == "accepted":
            self.pending.pop(frame["client_msg_id"], None)
        elif kind == "error" and frame.get("ref") in self.pending:
            self.pending.pop(frame["ref"])
        elif kind == "synced":
            self.synced.set()
            return
        await self.handlers.frame(frame)

    async def _command(self, client_msg_id: str, command: Command) -> str:
        self.pending[client_msg_id] = command
        await self._try(command)
        return client_msg_id

    async def _try(self, act: Callable[[Session], Awaitable[object]]) -> None:
        """Do `act` on the socket if there is one; a socket that just dropped is left to `run`
        (which renews sends and the presence subscription on the next one)."""
        if self.session is None:
            return
        with contextlib.suppress(SessionError):
            await act(self.session)
