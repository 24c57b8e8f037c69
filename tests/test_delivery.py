"""Delivery: every member device gets every message exactly once, in order, live or in sync."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Api
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

    cmid = await a.send_text(channel, "hello bob")

    accepted = await a.until(lambda f: f["type"] == "accepted")
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
    carol = await api.signup("carol")
    devices = [await api.login(carol, f"device-{i}") for i in range(3)]
    dave = await api.new_device("dave")
    channel = await api.direct(devices[0], dave.user_id)
    sockets = [await api.connect(d) for d in devices]
    d = await api.connect(dave)

    for i in range(20):
        await sockets[i % 3].send_text(channel, f"m{i}")
        await d.send_text(channel, f"d{i}")

    expected = None
    for socket in [*sockets, d]:
        got = await socket.collect_messages(channel, 40)
        await socket.settle(0.3)
        got = socket.messages(channel)
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
        cmid = await sender.send_text(channel, f"group message {i}")
        await sender.until(lambda f, c=cmid: f["type"] == "accepted" and f["client_msg_id"] == c)

    first = None
    for socket in sockets:
        got = await socket.collect_messages(channel, 10)
        first = first or got
        assert got == first
    await asyncio.gather(*(s.settle(0.3) for s in sockets))
    assert all(len(s.messages(channel)) == 10 for s in sockets)
    assert ids(first or []) == sorted(ids(first or []))
    assert [m["text"] for m in first or []] == [f"group message {i}" for i in range(10)]
    assert await api.all_history(owner, channel) == [
        {k: v for k, v in m.items() if k != "type"} for m in first or []
    ]


async def test_offline_device_gets_every_message_once_in_order_on_reconnect(api: Api) -> None:
    erin, frank = await api.new_device("erin"), await api.new_device("frank")
    channel = await api.direct(erin, frank.user_id)
    e = await api.connect(erin)
    f = await api.connect(frank)
    await e.send_text(channel, "before")
    first = (await f.collect_messages(channel, 1))[0]
    await f.send({"type": "ack", "channel_id": channel, "message_id": first["message_id"]})
    await f.settle(0.3)
    await f.close()

    for i in range(30):
        await e.send_text(channel, f"while away {i}")
    await e.collect_messages(channel, 31)

    back = await api.connect(frank)
    got = back.messages(channel)
    assert [m["text"] for m in got] == [f"while away {i}" for i in range(30)]
    assert ids(got) == sorted(ids(got))
    await back.settle(0.5)
    assert len(back.messages(channel)) == 30


async def test_sync_while_messages_keep_arriving_has_no_gap_and_no_duplicate(api: Api) -> None:
    gina, hal = await api.new_device("gina"), await api.new_device("hal")
    channel = await api.direct(gina, hal.user_id)
    g = await api.connect(gina)
    total = 200

    async def keep_sending() -> None:
        for i in range(total):
            await g.send_text(channel, f"n{i}")
            await asyncio.sleep(0.002)

    sender = asyncio.create_task(keep_sending())
    await asyncio.sleep(0.1)
    # Connect (and sync) in the middle of the burst, several times.
    seen: list[list[int]] = []
    for _ in range(3):
        h = await api.connect(hal, cursors={})
        await asyncio.sleep(0.05)
        seen.append(ids(h.messages(channel)))
        await h.close()
    await sender
    h = await api.connect(hal)
    got = await h.collect_messages(channel, total)
    await h.settle(0.5)
    got = h.messages(channel)
    assert [m["text"] for m in got] == [f"n{i}" for i in range(total)]
    assert len(set(ids(got))) == total
    for prefix in seen:
        assert prefix == sorted(set(prefix))


async def test_resending_the_same_client_msg_id_after_a_dropped_socket_yields_one_message(
    api: Api,
) -> None:
    ian, jo = await api.new_device("ian"), await api.new_device("jo")
    channel = await api.direct(ian, jo.user_id)
    j = await api.connect(jo)
    i1 = await api.connect(ian)
    await i1.send_text(channel, "only once", client_msg_id="retry-1")
    await i1.close()  # dropped before reading `accepted`

    i2 = await api.connect(ian)
    await i2.send_text(channel, "only once", client_msg_id="retry-1")
    await i2.until(lambda f: f["type"] == "accepted")
    await i2.send_text(channel, "next", client_msg_id="retry-2")

    got = await j.collect_messages(channel, 2)
    await j.settle(0.5)
    got = j.messages(channel)
    assert [m["text"] for m in got] == ["only once", "next"]
    history = await api.history(jo, channel)
    assert [m["client_msg_id"] for m in history] == ["retry-1", "retry-2"]
    # The echo on the second socket carries the original id (from sync or live).
    await i2.collect_messages(channel, 2)
    await i2.settle(0.5)
    assert i2.messages(channel) == got
