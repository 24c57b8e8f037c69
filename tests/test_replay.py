"""Replay: rebuilding the message store from the topic gives the same rows and the same ids."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from parley.dev import processor_lag
from parley.settings import Settings
from processors.replay import replay
from storage.postgres.migrate import migrate
from tests.client import Api

ROWS = (
    "SELECT channel_id, bucket, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at"
    " FROM messages ORDER BY channel_id, message_id"
)


async def rows(dsn: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(ROWS)
        return await cur.fetchall()


async def fresh_database(dsn: str) -> str:
    name = f"replay_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}".encode())
    new = dsn.replace("/postgres?", f"/{name}?")
    assert new != dsn
    await migrate(new)
    return new


async def drained(settings: Settings) -> None:
    for _ in range(300):
        if await processor_lag(settings) == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("processors did not catch up")


async def test_replay_into_an_empty_store_gives_the_same_rows_and_ids(
    api: Api, settings: Settings
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    group = await api.group(a, [b.user_id])
    socket = await api.connect(a)
    for i in range(50):
        await socket.send_text(channel if i % 2 else group, f"r{i}")
    await socket.send_text(channel, "dup", client_msg_id="same")
    await socket.send_text(channel, "dup", client_msg_id="same")
    await socket.collect_messages(channel, 26)
    await socket.collect_messages(group, 25)
    await drained(settings)

    live = await rows(settings.postgres_dsn)
    target = settings.model_copy(
        update={"postgres_dsn": await fresh_database(settings.postgres_dsn)}
    )
    read = await replay(target)
    assert read >= 52
    rebuilt = await rows(target.postgres_dsn)
    assert rebuilt == live
    assert [r for r in rebuilt if r[0] == channel and r[5] == "same"].__len__() == 1

    # Replaying over a store that already has everything changes nothing.
    await replay(target)
    assert await rows(target.postgres_dsn) == live
