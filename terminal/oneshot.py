"""The terminal client's commands that do one thing and exit, for people and scripts alike:
`parley login`, `parley logout`, `parley send`, `parley edit`, `parley delete`,
`parley history`, `parley search`, `parley invite`, `parley join` and `parley export`. Each takes the gateway's
URL and a device (a stored login or a bare token) and raises CommandError with a message fit
for the user when the server refuses. What they return to be printed, and the server's words in
the errors they raise, are rendered by `terminal.rendering.visible` (the `--json` output is the
API's own data: JSON escapes control characters itself)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson

from parley_client import ApiError, Channel, Client, Message, SearchResults, Session
from parley_client.reconnecting import ROWS, connect_first
from terminal import credentials
from terminal.credentials import Credentials
from terminal.directory import Directory, is_id
from terminal.rendering import rendered_errors, visible

DEVICE_NAME = "parley terminal"
SEND_TIMEOUT_S = 30.0
INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{24}")


class CommandError(Exception):
    """What went wrong, in words for the user (printed without a traceback)."""


@dataclass(frozen=True, slots=True)
class Token:
    """A device known by its token only (`--token`, `PARLEY_TOKEN`)."""

    token: str


Device = Credentials | Token


async def directory_of(client: Client, device: Device) -> Directory:
    """The names the device's user can see (their own too, when the login is stored)."""
    if isinstance(device, Credentials):
        return await Directory.load(client, device, device.user_id, device.username)
    return await Directory.load(client, device)


async def log_in(url: str, username: str, password: str) -> Credentials:
    """A new device of the user, stored for the next commands (replacing any stored one)."""
    with rendered_errors():
        async with Client(url) as client:
            login = await client.log_in(username, password, device_name=DEVICE_NAME)
    stored = Credentials(url, username, login.user_id, login.device_id, login.token)
    credentials.save(stored)
    return stored


async def log_out() -> str:
    """Revoke the stored device's token and forget it; says what was done."""
    stored = credentials.load()
    try:
        with rendered_errors():
            async with Client(stored.url) as client:
                await client.log_out(stored)
    except ApiError as exc:
        if exc.status != 401:  # already revoked: forgetting it is all that is left
            raise
    credentials.forget()
    return visible(f"logged out {stored.username} from {stored.url}")


async def send(url: str, device: Device, channel: str, text: str) -> str:
    """Send `text` to the channel (an id, a group's name or the other member's username), wait until it
    is accepted and its echo comes back; returns its `message_id`."""
    if not text:
        raise CommandError("nothing to send: the text is empty")
    return await _row(url, device, channel, "not sent", lambda s, c: s.send_message(c, text))


async def edit(url: str, device: Device, channel: str, message_id: str, text: str) -> str:
    """Replace the text of the user's message `message_id`; returns the edit's own id once it
    is accepted and has come back."""
    if not is_id(message_id):
        raise CommandError(f"--message takes a message id, not {message_id!r}")
    if not text:
        raise CommandError("no new text: the text is empty")
    return await _row(url, device, channel, "not edited", lambda s, c: s.edit(c, message_id, text))


async def delete(url: str, device: Device, channel: str, message_id: str) -> str:
    """Delete the message `message_id`; returns the delete's own id once accepted."""
    if not is_id(message_id):
        raise CommandError(f"--message takes a message id, not {message_id!r}")
    return await _row(url, device, channel, "not deleted", lambda s, c: s.delete(c, message_id))


async def _row(
    url: str,
    device: Device,
    channel: str,
    refused: str,
    write: Callable[[Session, str], Awaitable[str]],
) -> str:
    """Write one row to the channel (`write` sends it, returning its `client_msg_id`), wait for
    `accepted` and its echo; returns the row's `message_id`. CommandError(`refused: …`) if the
    server refuses it."""
    with rendered_errors():
        async with Client(url) as client:
            channels = await client.channels(device)
            channel_id = await _channel_id(client, device, channel, channels)
            heads = {c["channel_id"]: c["last_message_id"] for c in channels}
            # Resume every channel at its newest message: the sync this socket must read is empty.
            cursors = {c: m for c, m in heads.items() if m is not None}
            session = await connect_first(await client.discovery(device), device.token, cursors)
            try:
                return visible(await _echo(session, await write(session, channel_id), refused))
            finally:
                await session.close()


async def history(
    url: str,
    device: Device,
    channel: str,
    *,
    before: str | None = None,
    limit: int | None = None,
) -> tuple[list[Message], Directory]:
    """One page of the channel's messages, oldest first (the newest page without `before`),
    and the names to show them with."""
    if before is not None and not is_id(before):
        raise CommandError(f"--before takes a message id, not {before!r}")
    with rendered_errors():
        async with Client(url) as client:
            channel_id = await _channel_id(client, device, channel)
            messages = await client.history(device, channel_id, before=before, limit=limit)
            directory = await directory_of(client, device)
            await directory.learn(client, device, (m["sender_id"] for m in messages))
            return messages, directory


async def search(
    url: str,
    device: Device,
    q: str,
    *,
    channel: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> tuple[SearchResults, list[Channel], Directory]:
    """One page of the user's messages that hold every word of `q`, newest first (in one
    channel if given), and the channels and names to show them with (`next_before` made
    visible: it is printed as it is)."""
    if before is not None and not is_id(before):
        raise CommandError(f"--before takes a message id, not {before!r}")
    with rendered_errors():
        async with Client(url) as client:
            channels = await client.channels(device)
            channel_id = None
            if channel is not None:
                channel_id = await _channel_id(client, device, channel, channels)
            found = await client.search(device, q, channel_id, before=before, limit=limit)
            if found["next_before"] is not None:
                found["next_before"] = visible(found["next_before"])
            directory = await directory_of(client, device)
            senders = (r["message"]["sender_id"] for r in found["results"])
            await directory.learn(client, device, senders)
            return found, channels, directory


async def invite(
    url: str,
    device: Device,
    channel: str,
    *,
    uses: int | None = None,
    expires_in_s: int | None = None,
) -> str:
    """A new invite link to the group (its owners and admins): its code, shown this once."""
    with rendered_errors():
        async with Client(url) as client:
            channel_id = await _channel_id(client, device, channel)
            made = await client.create_invite(
                device, channel_id, expires_in_s=expires_in_s, max_uses=uses
            )
            return visible(str(made["code"]))


def invite_code(text: str) -> str:
    """The code of an invite link, given as the code or as the web app's link (`…#join=CODE`)."""
    code = text.strip().rpartition("#join=")[2]
    if not INVITE_CODE.fullmatch(code):
        raise CommandError(f"not an invite code or link: {visible(text)!r}")
    return code


async def join(url: str, device: Device, link: str) -> str:
    """Join the group of an invite link (its code, or the web app's link); says which."""
    code = invite_code(link)
    with rendered_errors():
        async with Client(url) as client:
            channel = await client.join_by_invite(device, code)
    return visible(f"joined {channel.get('name') or 'the group'} ({channel['channel_id']})")


async def export(url: str, device: Device) -> AsyncIterator[bytes]:
    """The user's data, a line of NDJSON at a time as the server streams it (the lines are
    data, JSON escapes their control characters)."""
    with rendered_errors():
        async with Client(url) as client:
            async for line in client.export(device):
                yield orjson.dumps(line) + b"\n"


async def _channel_id(
    client: Client, device: Device, key: str, channels: list[Channel] | None = None
) -> str:
    """An id is taken as it is (the server says if it is not the user's); a name is looked up
    among the user's channels."""
    if is_id(key):
        return key
    directory = await directory_of(client, device)
    if channels is None:
        channels = await client.channels(device)
    return (await directory.find_channel(client, device, channels, key))["channel_id"]


async def _echo(session: Session, client_msg_id: str, refused: str) -> str:
    """Read until the row is accepted and its echo has come (in either order)."""
    device_id = session.welcome.device_id if session.welcome else None
    deadline = time.monotonic() + SEND_TIMEOUT_S
    accepted, message_id = False, None
    while not (accepted and message_id):
        remaining = deadline - time.monotonic()
        try:
            frame = await session.next(max(remaining, 0.001))
        except TimeoutError:
            raise CommandError(f"no answer from the server in {SEND_TIMEOUT_S:g}s") from None
        if frame["type"] == "accepted" and frame["client_msg_id"] == client_msg_id:
            accepted = True
        elif (
            frame["type"] in ROWS
            and frame["client_msg_id"] == client_msg_id
            and frame["sender_device_id"] == device_id
        ):
            message_id = str(frame["message_id"])
        elif frame["type"] == "error" and frame.get("ref") == client_msg_id:
            raise CommandError(f"{refused}: {visible(frame['code'])}: {visible(frame['message'])}")
    return message_id
