"""Crash tests: a processor killed with SIGKILL mid-stream loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio

import pytest

from parley_client import Session
from tests.conftest import Api, eventually, metric
from tests.stack import Stack
from topics.definitions import key_partition

STORED = "parley_processor_messages_stored_total"


@pytest.fixture
def stack(stack_on_each_store: Stack) -> Stack:
    """Every test here runs on both message stores."""
    return stack_on_each_store


TOTAL = 500


async def send(socket: Session, channel: str, numbers: range) -> None:
    for i in numbers:
        await socket.send_message(channel, f"m{i}", client_msg_id=f"crash-{i}")
        await asyncio.sleep(0.004)  # pacing: a stream of sends, not one burst


async def test_processor_sigkill_mid_stream_every_device_gets_each_message_once_in_order(
    api: Api, stack: Stack
) -> None:
    sender, reader = await api.new_device("crash_s"), await api.new_device("crash_r")
    late = await api.add_device(reader.username, "late device")
    channel = await api.direct(sender, reader.user_id)
    s = await api.connect(sender)
    r = await api.connect(reader)
    processor = next(p for p in stack.processes if p.role == "processor" and p.popen.poll() is None)

    # Half the sends, and the worker is at work on them (storing and fanning out) when it is
    # killed; the other half is sent while it is dead and its successor starts.
    half = TOTAL // 2
    await send(s, channel, range(half))
    await r.collect_messages(channel, 50)
    delivered_before = len(r.messages(channel))
    await asyncio.to_thread(processor.kill)
    restarting = asyncio.create_task(asyncio.to_thread(stack.start_processor))
    await send(s, channel, range(half, TOTAL))
    restarted = await restarting

    expected = [f"m{i}" for i in range(TOTAL)]
    for socket in (s, r):
        await socket.collect_messages(channel, TOTAL, timeout_s=90)
        await socket.settle(1.0)  # a late duplicate would show here
    accepted = {f["client_msg_id"] for f in s.frames or [] if f["type"] == "accepted"}
    assert accepted == {f"crash-{i}" for i in range(TOTAL)}, s.errors()[:3]
    late_socket = await api.connect(late)
    await late_socket.settle(1.0)  # a late duplicate would show here

    for socket in (s, r, late_socket):
        got = socket.messages(channel)
        assert [m["text"] for m in got] == expected
        ids = [int(m["message_id"]) for m in got]
        assert ids == sorted(set(ids))
    assert s.messages(channel) == r.messages(channel) == late_socket.messages(channel)
    # The successor stored what was sent after the kill and what the killed worker had not,
    # and not what had already been delivered (those it found stored: same ids).
    stored = await metric(restarted.url, STORED)
    assert TOTAL - half <= stored <= TOTAL - delivered_before
    history = await api.all_history(reader, channel)
    assert history == [{k: v for k, v in m.items() if k != "type"} for m in r.messages(channel)]


async def test_one_of_two_processor_workers_killed_under_load_loses_and_doubles_nothing(
    api: Api, stack: Stack
) -> None:
    second = await asyncio.to_thread(stack.start_processor)  # joins the same consumer group
    sender, reader = await api.new_device("rb_s"), await api.new_device("rb_r")
    # A channel in every partition of parley.messages.v1: however the two workers share
    # them, each owns some of these channels.
    partitions = stack.settings.messages_partitions
    by_partition: dict[int, str] = {}
    while len(by_partition) < partitions:
        channel = await api.group(sender, [reader.user_id], name=f"g{len(by_partition)}")
        by_partition.setdefault(key_partition(channel, partitions), channel)
    channels = list(by_partition.values())
    s, r = await api.connect(sender), await api.connect(reader)
    per_channel = 60

    async def send_rounds(rounds: range) -> None:
        for i in rounds:
            for channel in channels:
                await s.send_message(channel, f"{channel}:{i}")
            await asyncio.sleep(0.01)  # pacing: rounds, not one burst

    await send_rounds(range(per_channel // 2))

    # Only this test sends now: messages the second worker stored are of these channels, so
    # it owns messages partitions, and is at work on them when it is killed.
    async def second_is_storing() -> bool:
        return await metric(second.url, STORED) > 0

    await eventually(second_is_storing, 60, "the second worker to store messages")
    await asyncio.to_thread(second.kill)
    await send_rounds(range(per_channel // 2, per_channel))  # its partitions move meanwhile

    for channel in channels:
        got = await r.collect_messages(channel, per_channel, timeout_s=90)
        assert [m["text"] for m in got] == [f"{channel}:{i}" for i in range(per_channel)]
    await r.settle(1.0)  # a late duplicate would show here
    for channel in channels:
        got = r.messages(channel)
        assert len(got) == per_channel
        assert [m["message_id"] for m in got] == [
            m["message_id"] for m in await api.all_history(reader, channel)
        ]
