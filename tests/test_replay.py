"""Replay: rebuilding the message store from the topic gives the same rows and the same ids, on
each message store (Postgres, and the Scylla store on Cassandra)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from processors.replay import replay
from schemas.message import Message
from schemas.settings import Settings
from storage.postgres.migrate import migrate
from storage.scylla import migrate_cluster
from storage.stores import open_stores
from tests.conftest import Api
from tests.stack import Stack
from topics.definitions import messages_topic
from topics.offsets import group_lag

ROWS = (
    "SELECT channel_id, bucket, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at,"
    " kind, target_id, emoji, removed, edited_at, edit_id, deleted, reply_to, reply_count,"
    " last_reply_id, pinned_by, pinned_at, pin_id, refused, mentions"
    " FROM messages WHERE channel_id = ANY(%s) ORDER BY channel_id, message_id"
)


@pytest.fixture
def stack(stack_on_each_store: Stack) -> Stack:
    """Every test here runs on both message stores."""
    return stack_on_each_store


async def rows(dsn: str, channels: list[str]) -> list[tuple[object, ...]]:
    """Every row of these channels, every column (other tests share the database)."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(ROWS, (channels,))
        return await cur.fetchall()


async def empty_store(settings: Settings) -> Settings:
    """Settings naming a new, empty message store of the same kind."""
    name = f"replay_{uuid.uuid4().hex[:8]}"
    if settings.message_store == "scylla":
        await migrate_cluster(settings.scylla_host_list(), settings.scylla_port, name)
        return settings.model_copy(update={"scylla_keyspace": name})
    dsn = settings.postgres_dsn
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}".encode())
    new = dsn.replace("/postgres?", f"/{name}?")
    assert new != dsn
    await migrate(new)
    return settings.model_copy(update={"postgres_dsn": new})


async def stored(settings: Settings, channels: list[str]) -> dict[str, list[Message]]:
    """Every stored message of the channels, read through the store's own paging."""
    stores = await open_stores(settings)
    try:
        out: dict[str, list[Message]] = {}
        for channel in channels:
            messages: list[Message] = []
            while page := await stores.messages.page(
                channel, after=messages[-1].message_id if messages else 0, limit=100
            ):
                messages += page
            out[channel] = messages
        return out
    finally:
        await stores.close()


async def drained(settings: Settings) -> None:
    for _ in range(300):
        lag = await group_lag(
            settings.kafka_bootstrap, settings.processor_id, messages_topic(settings).name
        )
        if lag == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("processors did not catch up")


async def test_replay_into_an_empty_store_gives_the_same_rows_and_ids(
    api: Api, stack: Stack
) -> None:
    settings = stack.settings
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    group = await api.group(a, [b.user_id])
    socket = await api.connect(a)
    for i in range(50):
        await socket.send_message(channel if i % 2 else group, f"r{i}")
    await socket.send_message(channel, "dup", client_msg_id="same")
    await socket.send_message(channel, "dup", client_msg_id="same")
    await socket.send_message(group, f"hi @{b.username}")  # its mentions are stored, not redone
    echoes = await socket.collect_messages(channel, 26)
    await socket.collect_messages(group, 26)
    # Changes replay too: an edit, a reaction taken back, a delete (its edit's text goes too),
    # and replies with their message's count (one to the message deleted after it).
    edited, deleted = echoes[0]["message_id"], echoes[1]["message_id"]
    for cmid in (
        await socket.send_message(channel, "a reply", reply_to=edited),
        await socket.send_message(channel, "another", reply_to=edited),
        await socket.send_message(channel, "to the deleted", reply_to=deleted),
        await socket.pin(channel, edited),
        await socket.pin(channel, deleted),
        await socket.pin(channel, echoes[2]["message_id"]),
        await socket.pin(channel, echoes[2]["message_id"], unpin=True),
        await socket.edit(channel, edited, "r1, edited"),
        await socket.react(channel, edited, "👍"),
        await socket.react(channel, deleted, "🎉"),
        await socket.react(channel, edited, "👍", removed=True),
        await socket.edit(channel, deleted, "r3, edited"),
        await socket.delete(channel, deleted),
    ):
        await socket.accepted(cmid)
    await socket.until(lambda f: f["type"] == "delete")
    await drained(settings)

    live = await stored(settings, [channel, group])
    assert [len(live[channel]), len(live[group])] == [39, 26]
    assert live[group][-1].mentions == [b.user_id]
    first, second = live[channel][0], live[channel][1]
    assert (first.text, first.reactions, second.deleted, second.text) == (
        "r1, edited",
        None,
        True,
        "",
    )
    assert (first.reply_count, second.reply_count) == (2, 1)
    assert (first.pinned_by, second.pinned_by, live[channel][2].pinned_by) == (
        a.user_id,
        None,
        None,
    )
    target = await empty_store(settings)
    read = await replay(target)
    assert read >= 60
    assert await stored(target, [channel, group]) == live
    assert [m.client_msg_id for m in live[channel]].count("same") == 1
    if settings.message_store == "postgres":  # every row of the store, bucket included
        mine = [channel, group]
        assert await rows(target.postgres_dsn, mine) == await rows(settings.postgres_dsn, mine)

    # Replaying over a store that already has everything changes nothing.
    await replay(target)
    assert await stored(target, [channel, group]) == live
