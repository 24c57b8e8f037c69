"""A messages partition that cannot make progress holds up its own channels only; a huge text
that cannot make progress holds up its own channel only."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import psycopg

from parley_client import Login
from tests.conftest import Api
from tests.stack import Stack
from topics.definitions import key_partition


async def partner_channel(
    api: Api, alice: Login, partition: int, partitions: int, *, same: bool
) -> tuple[Login, str]:
    """A new user and their direct channel with alice, in `partition` (same) or in another one
    (ids are random: a few tries)."""
    for _ in range(100):
        other = await api.new_device("pp")
        channel = await api.direct(alice, other.user_id)
        if (key_partition(channel, partitions) == partition) == same:
            return other, channel
    raise AssertionError(f"no channel landed in {'the same' if same else 'another'} partition")


@contextlib.asynccontextmanager
async def send_key_held(
    dsn: str, device_id: str, client_msg_id: str, channel_id: str
) -> AsyncIterator[None]:
    """A transaction that claims a send key first and does not commit: the pipeline's insert
    of that send waits on the row lock, so its batch cannot finish until the block ends (then
    rolled back)."""
    async with await psycopg.AsyncConnection.connect(dsn) as blocker:
        await blocker.execute(
            "INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id, message_id)"
            " VALUES (%s, %s, %s, 1)",
            (device_id, client_msg_id, channel_id),
        )
        yield
        await blocker.rollback()


async def test_blocked_messages_partition_does_not_block_another_partition(
    api: Api, stack: Stack
) -> None:
    alice, bob = await api.new_device("pa"), await api.new_device("pb")
    partitions = stack.settings.messages_partitions
    blocked_channel = await api.direct(alice, bob.user_id)
    blocked_partition = key_partition(blocked_channel, partitions)
    carol, free_channel = await partner_channel(
        api, alice, blocked_partition, partitions, same=False
    )
    bob_socket = await api.connect(bob)
    carol_socket = await api.connect(carol)
    alice_socket = await api.connect(alice)

    # Alice's next send is held in the pipeline: its partition's batch cannot finish.
    blocker_id = uuid.uuid4().hex
    dsn = stack.settings.postgres_dsn
    async with send_key_held(dsn, alice.device_id, blocker_id, blocked_channel):
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
    carol, neighbour = await partner_channel(api, alice, partition, partitions, same=True)
    bob_socket = await api.connect(bob)
    carol_socket = await api.connect(carol)
    alice_socket = await api.connect(alice)
    huge = "h" * 100_000  # well over processor_heavy_record_bytes
    assert len(huge) >= stack.settings.processor_heavy_record_bytes

    # The huge text is held in the pipeline: its batch cannot finish.
    huge_id = uuid.uuid4().hex
    dsn = stack.settings.postgres_dsn
    async with send_key_held(dsn, alice.device_id, huge_id, huge_channel):
        await alice_socket.send_message(huge_channel, huge, client_msg_id=huge_id)
        await _wait_for_lock_waiter(stack.settings.postgres_dsn)
        # A small text after it in its own channel waits for it; another channel of the same
        # partition does not.
        await alice_socket.send_message(huge_channel, "after the huge one")
        await alice_socket.send_message(neighbour, "goes through")
        (delivered,) = await carol_socket.collect_messages(neighbour, 1)
        assert delivered["text"] == "goes through"
        assert bob_socket.messages(huge_channel) == []

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
