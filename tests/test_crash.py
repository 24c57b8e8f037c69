"""Crash tests: a processor killed with SIGKILL mid-stream loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio

import pytest

from parley_client import Login, Session
from tests.conftest import MARK, Api, before_mark, eventually, marked, metric
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
    # The successor stored what was sent after the kill and what the killed worker had not,
    # and not what had already been delivered (those it found stored: same ids).
    stored = await metric(restarted.url, STORED)
    await marked(s, channel, r)  # a late duplicate would come before the mark
    accepted = {f["client_msg_id"] for f in s.frames or [] if f["type"] == "accepted"}
    crashed = {c for c in accepted if c.startswith("crash-")}
    assert crashed == {f"crash-{i}" for i in range(TOTAL)}, s.errors()[:3]
    late_socket = await api.connect(late)
    await marked(s, channel, late_socket)

    for socket in (s, r, late_socket):
        got = before_mark(socket, channel)
        assert [m["text"] for m in got] == expected
        ids = [int(m["message_id"]) for m in got]
        assert ids == sorted(set(ids))
    assert before_mark(s, channel) == before_mark(r, channel) == before_mark(late_socket, channel)
    assert TOTAL - half <= stored <= TOTAL - delivered_before
    history = [m for m in await api.all_history(reader, channel) if m["text"] != MARK]
    got = before_mark(r, channel)
    assert history == [{k: v for k, v in m.items() if k != "type"} for m in got]


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
    for channel in channels:
        await marked(s, channel, r)  # a late duplicate would come before the mark
        got = before_mark(r, channel)
        assert len(got) == per_channel
        assert [m["message_id"] for m in got] == [
            m["message_id"] for m in await api.all_history(reader, channel) if m["text"] != MARK
        ]


async def seen(socket: Session, cmids: set[str], types: tuple[str, ...]) -> None:
    """Until the socket has received a frame of one of `types` for each client_msg_id."""
    missing = cmids - {f.get("client_msg_id") for f in socket.frames or [] if f["type"] in types}
    while missing:
        frame = await socket.next(timeout_s=90)
        if frame["type"] in types:
            missing.discard(frame["client_msg_id"])


async def test_processor_sigkill_mid_changes_applies_each_edit_reaction_and_delete_once(
    api: Api, stack: Stack
) -> None:
    """Edits, reactions and deletes through a killed processor: every device gets each change
    once, in the channel's order, and history ends in exactly the state they give."""
    sender, reader = await api.new_device("crash_cs"), await api.new_device("crash_cr")
    channel = await api.group(sender, [reader.user_id])
    s, r = await api.connect(sender), await api.connect(reader)
    async with s.heartbeating(), r.heartbeating():  # the restart takes a while
        await changes_through_a_crash(api, stack, s, r, channel, reader)


async def changes_through_a_crash(
    api: Api, stack: Stack, s: Session, r: Session, channel: str, reader: Login
) -> None:
    count = 40
    await send(s, channel, range(count))
    ids = [m["message_id"] for m in await r.collect_messages(channel, count)]
    processor = next(p for p in stack.processes if p.role == "processor" and p.popen.poll() is None)

    async def sender_changes() -> list[str]:
        sent = []
        for i, target in enumerate(ids):
            sent.append(await s.edit(channel, target, f"m{i}*", client_msg_id=f"e{i}"))
            if i % 3 == 0:
                sent.append(await s.react(channel, target, "🎉", client_msg_id=f"p{i}"))
                sent.append(
                    await s.react(channel, target, "🎉", removed=True, client_msg_id=f"q{i}")
                )
            if i % 10 == 9:
                sent.append(await s.delete(channel, target, client_msg_id=f"d{i}"))
            await asyncio.sleep(0.004)  # pacing: a stream of changes, not one burst
        return sent

    async def reader_changes() -> list[str]:
        sent = []
        for i, target in enumerate(ids):
            if i % 2 == 0:
                sent.append(await r.react(channel, target, "👍", client_msg_id=f"l{i}"))
                await asyncio.sleep(0.008)
        return sent

    changing = asyncio.gather(sender_changes(), reader_changes())
    await s.until(lambda f: f["type"] == "edit" and f["client_msg_id"] == "e5")
    await asyncio.to_thread(processor.kill)
    await asyncio.to_thread(stack.start_processor)
    mine, theirs = await changing
    for socket, cmids in ((s, mine), (r, theirs)):
        await seen(socket, set(cmids), ("accepted",))
        assert not socket.errors()
    every = set(mine) | set(theirs)
    kinds = ("message", "edit", "delete", "reaction")
    for socket in (s, r):
        await seen(socket, every, kinds)
        await marked(s, channel, socket)  # a late duplicate would come before the mark
        rows = [f for f in socket.frames or [] if f["type"] in kinds and f.get("text") != MARK]
        assert sorted(f["client_msg_id"] for f in rows if f["type"] != "message") == sorted(every)
        row_ids = [int(f["message_id"]) for f in rows]
        assert row_ids == sorted(set(row_ids))  # each once, in the channel's order

    history = {m["message_id"]: m for m in await api.all_history(reader, channel)}
    for i, target in enumerate(ids):
        m = history[target]
        if i % 10 == 9:
            assert (m["text"], m.get("deleted"), m.get("reactions")) == ("", True, None)
            continue
        assert m["text"] == f"m{i}*" and "edited_at" in m
        assert m.get("reactions") == ({"👍": [reader.user_id]} if i % 2 == 0 else None)
