"""Crash tests: a processor killed with SIGKILL mid-stream loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Api
from tests.stack import Process, Stack


@pytest.fixture
def stack(stack_on_each_store: Stack) -> Stack:
    """Every test here runs on both message stores."""
    return stack_on_each_store


TOTAL = 500


async def test_processor_sigkill_during_500_sends_every_device_gets_each_message_once_in_order(
    api: Api, stack: Stack
) -> None:
    sender, reader = await api.new_device("crash_s"), await api.new_device("crash_r")
    late = await api.login(reader.username, "late device")
    channel = await api.direct(sender, reader.user_id)
    s = await api.connect(sender)
    r = await api.connect(reader)
    processor = next(p for p in stack.processes if p.role == "processor" and p.popen.poll() is None)

    async def send_all() -> None:
        for i in range(TOTAL):
            await s.send_text(channel, f"m{i}", client_msg_id=f"crash-{i}")
            await asyncio.sleep(0.004)

    restarted: list[Process] = []

    async def crash_and_restart() -> None:
        await asyncio.sleep(0.6)
        await asyncio.to_thread(processor.kill)
        restarted.append(await asyncio.to_thread(stack.start_processor))

    await asyncio.gather(send_all(), crash_and_restart())

    expected = [f"m{i}" for i in range(TOTAL)]
    for socket in (s, r):
        await socket.collect_messages(channel, TOTAL, timeout=90)
        await socket.settle(1.0)
    accepted = {f["client_msg_id"] for f in s.frames if f["type"] == "accepted"}
    assert accepted == {f"crash-{i}" for i in range(TOTAL)}, s.errors()[:3]
    late_socket = await api.connect(late)
    await late_socket.settle(1.0)

    for socket in (s, r, late_socket):
        got = socket.messages(channel)
        assert [m["text"] for m in got] == expected
        ids = [int(m["message_id"]) for m in got]
        assert ids == sorted(set(ids))
    assert s.messages(channel) == r.messages(channel) == late_socket.messages(channel)
    # The kill really was mid-stream: the new worker stored part of the sends, not all of them.
    metrics = (await api.http.get(f"{restarted[0].url}/metrics")).text
    stored = _metric(metrics, "parley_processor_messages_stored_total")
    assert 0 < stored < TOTAL
    history = await api.all_history(reader, channel)
    assert history == [{k: v for k, v in m.items() if k != "type"} for m in r.messages(channel)]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


async def test_one_of_two_processor_workers_killed_under_load_loses_and_doubles_nothing(
    api: Api, stack: Stack
) -> None:
    second = await asyncio.to_thread(stack.start_processor)  # joins the same consumer group
    sender, reader = await api.new_device("rb_s"), await api.new_device("rb_r")
    channels = [await api.group(sender, [reader.user_id], name=f"g{i}") for i in range(6)]
    s, r = await api.connect(sender), await api.connect(reader)
    per_channel = 60

    async def send_all() -> None:
        for i in range(per_channel):
            for channel in channels:  # channels spread over partitions, so over both workers
                await s.send_text(channel, f"{channel}:{i}")
            await asyncio.sleep(0.01)

    async def kill_one() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(second.kill)

    await asyncio.gather(send_all(), kill_one())
    for channel in channels:
        got = await r.collect_messages(channel, per_channel, timeout=90)
        assert [m["text"] for m in got] == [f"{channel}:{i}" for i in range(per_channel)]
    await r.settle(1.0)
    for channel in channels:
        got = r.messages(channel)
        assert len(got) == per_channel
        assert [m["message_id"] for m in got] == [
            m["message_id"] for m in await api.all_history(reader, channel)
        ]
