"""Group adds under abuse: who may add a user to groups (everyone, friends, nobody), a rate
limit on adds, and a channel list that costs the same few statements however many channels a
user is in."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from gateway.commands.channels import list_channels
from parley_client import Login, Session
from schemas.settings import Settings
from storage.postgres.accounts import PostgresAccountStore
from storage.postgres.channels import PostgresChannelStore
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.reads import PostgresReadStore
from storage.protocols import Device
from tests.conftest import Api

# --- the channel list -------------------------------------------------------------------------


class CountingCursor(psycopg.AsyncCursor[tuple[object, ...]]):
    """Counts the statements its connections send (every store call goes through a cursor)."""

    statements = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        type(self).statements += 1
        return await super().execute(*args, **kwargs)


async def sent(socket: Session, channel_id: str, count: int) -> list[str]:
    """Send `count` messages and wait for their echoes (they are stored by then): their ids."""
    cmids = [await socket.send_message(channel_id, f"message {n}") for n in range(count)]
    for cmid in cmids:
        await socket.accepted(cmid)
    while True:
        echoed = {m["client_msg_id"]: m["message_id"] for m in socket.messages(channel_id)}
        if all(c in echoed for c in cmids):
            return [echoed[c] for c in cmids]
        await socket.collect_messages(channel_id, len(socket.messages(channel_id)) + 1)


async def statements_of_channel_list(settings: Settings, device: Device) -> tuple[int, int]:
    """The statements one `GET /v1/channels` of `device` sends to Postgres (the command run
    here, on stores of this test's own whose cursors count), and the channels it lists."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.postgres_dsn,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "cursor_factory": CountingCursor},
        open=False,
    )
    await pool.open(wait=True)
    try:
        stores = SimpleNamespace(
            channels=PostgresChannelStore(pool),
            messages=PostgresMessageStore(pool),
            reads=PostgresReadStore(pool),
        )
        before = CountingCursor.statements
        found = await list_channels(SimpleNamespace(stores=stores), device)  # type: ignore[arg-type]
        return CountingCursor.statements - before, len(found)
    finally:
        await pool.close()


async def device_of(settings: Settings, login: Login) -> Device:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(settings.postgres_dsn, open=False)
    await pool.open(wait=True)
    try:
        device = await PostgresAccountStore(pool).live_device(login.device_id)
    finally:
        await pool.close()
    assert device is not None
    return device


async def test_the_channel_list_costs_the_same_statements_for_3_channels_as_for_40(
    api: Api, settings: Settings
) -> None:
    me, pal = await api.new_device("cl"), await api.new_device("cl")
    await api.make_friends(me, pal)
    caller = await device_of(settings, me)
    socket = await api.connect(pal)
    groups = [await api.group(me, [pal.user_id], name=f"g{n}") for n in range(40)]
    for group in groups[:3]:
        await sent(socket, group, 1)  # unread: each is counted
    few, listed = await statements_of_channel_list(settings, caller)
    assert listed == 40
    for group in groups[3:]:
        await sent(socket, group, 1)
    many, listed = await statements_of_channel_list(settings, caller)
    assert listed == 40
    assert many == few <= 6, (few, many)


async def test_the_channel_list_is_exact_for_a_user_in_many_channels(api: Api) -> None:
    """Last message, read marker and unread count of each of 31 channels: none sent, some
    read, some with the reader's own messages, one beyond the cap of 100."""
    me, pal = await api.new_device("ce"), await api.new_device("ce")
    await api.make_friends(me, pal)
    dm = await api.direct(me, pal.user_id)
    groups = [await api.group(me, [pal.user_id], name=f"g{n}") for n in range(30)]
    theirs, mine = await api.connect(pal), await api.connect(me)
    expected: dict[str, dict[str, Any]] = {}
    for n, channel in enumerate([dm, *groups]):
        from_pal = await sent(theirs, channel, 102 if n == 0 else n % 4)
        from_me = await sent(mine, channel, 1) if n % 5 == 1 else []
        ids = from_pal + from_me
        read = from_pal[0] if n % 3 == 2 and from_pal else None
        if read is not None:
            await mine.read(channel, read)
            await mine.until(lambda f, c=channel: f["type"] == "read" and f["channel_id"] == c)
        unread = len(from_pal) - (1 if read is not None else 0)
        expected[channel] = {
            "last_message_id": max(ids, key=int) if ids else None,
            "read_message_id": read,
            "unread_count": min(unread, 100),
        }
    listed = {
        c["channel_id"]: {k: c[k] for k in ("last_message_id", "read_message_id", "unread_count")}
        for c in await api.channels(me)
    }
    assert listed == expected
    assert expected[dm]["unread_count"] == 100  # 102 unread, counted up to the cap
