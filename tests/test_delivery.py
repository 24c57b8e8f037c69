"""Delivery: every member device gets every message exactly once, in order, live or in sync."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import MARK, Api, before_mark, handled, marked
from tests.stack import Stack


@pytest.fixture
def stack(stack_on_each_store: Stack) -> Stack:
    """Every test here runs on both message stores."""
    return stack_on_each_store


def ids(frames: list[dict[str, object]]) -> list[int]:
    return [int(str(f["message_id"])) for f in frames]


async def test_direct_message_reaches_both_users_and_the_sender_echo_carries_the_id(
    api: Api,
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    channel = await api.direct(alice, bob.user_id)
    a, b = await api.connect(alice), await api.connect(bob)

    cmid = await a.send_message(channel, "hello bob")

    accepted = await a.accepted(cmid)
    assert accepted == {"type": "accepted", "client_msg_id": cmid, "channel_id": channel}
    echo = (await a.collect_messages(channel, 1))[0]
    got = (await b.collect_messages(channel, 1))[0]
    assert echo == got
    assert got["text"] == "hello bob"
    assert got["client_msg_id"] == cmid
    assert got["sender_id"] == alice.user_id
    assert got["sender_device_id"] == alice.device_id
    assert got["sent_at"].endswith("Z")
    history = await api.history(bob, channel)
    assert history == [{k: v for k, v in got.items() if k != "type"}]


async def test_three_devices_of_one_user_each_get_every_message_once_in_order(api: Api) -> None:
    carol = await api.new_user("carol")
    devices = [await api.add_device(carol, f"device-{i}") for i in range(3)]
    dave = await api.new_device("dave")
    channel = await api.direct(devices[0], dave.user_id)
    sockets = [await api.connect(d) for d in devices]
    d = await api.connect(dave)

    for i in range(20):
        await sockets[i % 3].send_message(channel, f"m{i}")
        await d.send_message(channel, f"d{i}")

    for socket in [*sockets, d]:
        await socket.collect_messages(channel, 40)
    await marked(d, channel, *sockets)  # a late duplicate would come before the mark
    expected = None
    for socket in [*sockets, d]:
        got = before_mark(socket, channel)
        assert len(got) == 40
        assert ids(got) == sorted(set(ids(got)))
        expected = expected or got
        assert got == expected
    # Each device's own sends appear in the order it sent them.
    texts = [f["text"] for f in expected or []]
    assert [t for t in texts if t.startswith("d")] == [f"d{i}" for i in range(20)]


async def test_group_of_100_members_every_member_gets_every_message_once_in_order(api: Api) -> None:
    devices = await asyncio.gather(*(api.new_device("g") for _ in range(100)))
    owner = devices[0]
    channel = await api.group(owner, [d.user_id for d in devices[1:]], name="hundred")
    sockets = await asyncio.gather(*(api.connect(d) for d in devices))

    for i in range(10):
        # Waiting for `accepted` orders sends from different sockets: it means "in the log".
        sender = sockets[i * 7 % 100]
        await sender.accepted(await sender.send_message(channel, f"group message {i}"))

    first = None
    for socket in sockets:
        got = await socket.collect_messages(channel, 10)
        first = first or got
        assert got == first
    await marked(sockets[0], channel, *sockets)  # a late duplicate would come before the mark
    assert all(len(before_mark(s, channel)) == 10 for s in sockets)
    assert ids(first or []) == sorted(ids(first or []))
    assert [m["text"] for m in first or []] == [f"group message {i}" for i in range(10)]
    history = await api.all_history(owner, channel)
    assert [m for m in history if m["text"] != MARK] == [
        {k: v for k, v in m.items() if k != "type"} for m in first or []
    ]


async def test_offline_device_gets_every_message_once_in_order_on_reconnect(api: Api) -> None:
    erin, frank = await api.new_device("erin"), await api.new_device("frank")
    channel = await api.direct(erin, frank.user_id)
    e = await api.connect(erin)
    f = await api.connect(frank)
    await e.send_message(channel, "before")
    first = (await f.collect_messages(channel, 1))[0]
    await f.ack(channel, first["message_id"])
    await handled(f)
    await f.close()

    for i in range(30):
        await e.send_message(channel, f"while away {i}")
    await e.collect_messages(channel, 31)

    back = await api.connect(frank)
    got = back.messages(channel)
    assert [m["text"] for m in got] == [f"while away {i}" for i in range(30)]
    assert ids(got) == sorted(ids(got))
    await marked(e, channel, back)  # a late duplicate would come before the mark
    assert len(before_mark(back, channel)) == 30


async def test_sync_while_messages_keep_arriving_has_no_gap_and_no_duplicate(api: Api) -> None:
    gina, hal = await api.new_device("gina"), await api.new_device("hal")
    channel = await api.direct(gina, hal.user_id)
    g = await api.connect(gina)
    syncs_done = asyncio.Event()
    sent = 0

    async def keep_sending() -> None:
        nonlocal sent
        while not syncs_done.is_set():  # the burst outlasts every sync below
            await g.send_message(channel, f"n{sent}")
            sent += 1
            await asyncio.sleep(0.002)  # pacing: a stream, not one burst

    sender = asyncio.create_task(keep_sending())
    await g.collect_messages(channel, 20)  # the stream is flowing
    # Connect (and sync) in the middle of the stream, several times: each sync ends with
    # messages still arriving live.
    seen: list[list[str]] = []
    for _ in range(3):
        h = await api.connect(hal, cursors={})
        await h.collect_messages(channel, len(h.messages(channel)) + 1)  # one live, at least
        seen.append([m["text"] for m in h.messages(channel)])
        await h.close()
    syncs_done.set()
    await sender
    h = await api.connect(hal)
    await h.collect_messages(channel, sent)
    await marked(g, channel, h)  # a late duplicate would come before the mark
    got = before_mark(h, channel)
    assert [m["text"] for m in got] == [f"n{i}" for i in range(sent)]
    assert ids(got) == sorted(set(ids(got)))
    for prefix in seen:  # sync then live: from the first message on, none missing or twice
        assert prefix == [f"n{i}" for i in range(len(prefix))]


async def test_resending_the_same_client_msg_id_after_a_dropped_socket_yields_one_message(
    api: Api,
) -> None:
    ian, jo = await api.new_device("ian"), await api.new_device("jo")
    channel = await api.direct(ian, jo.user_id)
    j = await api.connect(jo)
    i1 = await api.connect(ian)
    await i1.send_message(channel, "only once", client_msg_id="retry-1")
    await i1.close()  # dropped before reading `accepted`

    i2 = await api.connect(ian)
    await i2.accepted(await i2.send_message(channel, "only once", client_msg_id="retry-1"))
    await i2.send_message(channel, "next", client_msg_id="retry-2")

    await marked(i2, channel, j)  # a late duplicate would come before the mark
    got = before_mark(j, channel)
    assert [m["text"] for m in got] == ["only once", "next"]
    history = await api.history(jo, channel)
    assert [m["client_msg_id"] for m in history if m["text"] != MARK] == ["retry-1", "retry-2"]
    # The echo on the second socket carries the original id (from sync or live).
    assert before_mark(i2, channel) == got
