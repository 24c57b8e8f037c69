"""A messages partition that cannot make progress holds up its own channels only; a huge text
that cannot make progress holds up its own channel only."""

from __future__ import annotations

import time
import uuid

import psycopg

from tests.conftest import Api
from tests.stack import Stack
from topics.definitions import key_partition


async def test_blocked_messages_partition_does_not_block_another_partition(
    api: Api, stack: Stack
) -> None:
    alice, bob = await api.new_device("pa"), await api.new_device("pb")
    partitions = stack.settings.messages_partitions
    blocked_channel = await api.direct(alice, bob.user_id)
    blocked_partition = key_partition(blocked_channel, partitions)
    # A channel of alice's in another messages partition (ids are random: a few tries).
    for _ in range(50):
        carol = await api.new_device("pc")
        free_channel = await api.direct(alice, carol.user_id)
        if key_partition(free_channel, partitions) != blocked_partition:
            break
    else:
        raise AssertionError("no channel landed in another partition")
    bob_socket = await api.connect(bob)
    carol_socket = await api.connect(carol)
    alice_socket = await api.connect(alice)

    # A transaction that claims alice's next send first and does not commit: the pipeline's
    # insert of that send waits on the row lock, so the partition's batch cannot finish.
    blocker_id = uuid.uuid4().hex
    async with await psycopg.AsyncConnection.connect(stack.settings.postgres_dsn) as blocker:
        await blocker.execute(
            "INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id, message_id)"
            " VALUES (%s, %s, %s, 1)",
            (alice.device_id, blocker_id, blocked_channel),
        )
        await alice_socket.send_message(blocked_channel, "held up", client_msg_id=blocker_id)
        await alice_socket.until(
            lambda f: f["type"] == "accepted" and f["client_msg_id"] == blocker_id
        )
        # The pipeline reached the lock: Postgres shows the insert waiting on this transaction.
        await _wait_for_lock_waiter(stack.settings.postgres_dsn)

        await alice_socket.send_message(free_channel, "goes through")
        (delivered,) = await carol_socket.collect_messages(free_channel, 1)
        assert delivered["text"] == "goes through"
        assert bob_socket.messages(blocked_channel) == []
        await blocker.rollback()

    # Released: the held-up send is stored and delivered, once.
    (late,) = await bob_socket.collect_messages(blocked_channel, 1)
    assert late["text"] == "held up"


async def test_held_up_huge_text_does_not_block_its_partitions_other_channels(
    api: Api, stack: Stack
) -> None:
    alice, bob = await api.new_device("ha"), await api.new_device("hb")
    partitions = stack.settings.messages_partitions
    huge_channel = await api.direct(alice, bob.user_id)
    partition = key_partition(huge_channel, partitions)
    # A channel of alice's in the same messages partition (ids are random: a few tries).
    for _ in range(100):
        carol = await api.new_device("hc")
        neighbour = await api.direct(alice, carol.user_id)
        if key_partition(neighbour, partitions) == partition:
            break
    else:
        raise AssertionError("no channel landed in the same partition")
    bob_socket = await api.connect(bob)
    carol_socket = await api.connect(carol)
    alice_socket = await api.connect(alice)
    huge = "h" * 100_000  # well over processor_heavy_record_bytes
    assert len(huge) >= stack.settings.processor_heavy_record_bytes

    # The huge text's insert waits on a row lock (as above): its batch cannot finish.
    huge_id = uuid.uuid4().hex
    async with await psycopg.AsyncConnection.connect(stack.settings.postgres_dsn) as blocker:
        await blocker.execute(
            "INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id, message_id)"
            " VALUES (%s, %s, %s, 1)",
            (alice.device_id, huge_id, huge_channel),
        )
        await alice_socket.send_message(huge_channel, huge, client_msg_id=huge_id)
        await _wait_for_lock_waiter(stack.settings.postgres_dsn)
        # A small text after it in its own channel waits for it; another channel of the same
        # partition does not.
        await alice_socket.send_message(huge_channel, "after the huge one")
        await alice_socket.send_message(neighbour, "goes through")
        (delivered,) = await carol_socket.collect_messages(neighbour, 1)
        assert delivered["text"] == "goes through"
        assert bob_socket.messages(huge_channel) == []
        await blocker.rollback()

    # Released: the channel's two texts arrive once each, in the order they were sent.
    late = await bob_socket.collect_messages(huge_channel, 2)
    assert [m["text"] for m in late] == [huge, "after the huge one"]
    assert int(late[0]["message_id"]) < int(late[1]["message_id"])


async def _wait_for_lock_waiter(dsn: str, timeout_s: float = 30.0) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cursor = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE '%%message_sends%%'"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            await watcher.execute("SELECT pg_sleep(0.05)")
        raise AssertionError("the pipeline never waited on the blocked send")
