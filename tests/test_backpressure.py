"""A socket that stops reading is closed (4008) once its queue passes a byte budget, and the
gateway's queues together have a budget too: memory never grows without bound (SPEC §4)."""

from __future__ import annotations

import asyncio

from tests.conftest import Api, extra_gateway
from tests.stack import Stack
from tests.test_scaleout import close_code_after_draining, eventually, stalled_socket

BIG = 100_000  # characters per message: the largest text


async def slow_closed(api: Api, url: str) -> float:
    metrics = (await api.request("GET", f"{url}/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("parley_gateway_slow_consumers_closed_total "):
            return float(line.split()[1])
    return 0.0


async def test_a_socket_that_stops_reading_large_messages_is_closed_by_its_byte_budget(
    api: Api, stack: Stack
) -> None:
    # 8 MiB per socket, and far fewer than the 10,000 frames that would close it by count.
    async with extra_gateway(stack, PARLEY_OUTBOUND_QUEUE_BYTES=str(8 << 20)) as gateway:
        sender, slow = await api.new_device("bb_s"), await api.new_device("bb_r")
        channel = await api.direct(sender, slow.user_id)
        stalled = await asyncio.to_thread(stalled_socket, gateway.port, slow.token)
        s = await api.connect(sender)
        total = 200  # 20 MB of text: more than the budget and the kernel's buffers together
        for i in range(total):
            await s.send_message(channel, f"{i:04}" + "z" * (BIG - 4), client_msg_id=f"big-{i}")
        await s.collect_messages(channel, total, timeout_s=120)

        async def closed() -> bool:
            return await slow_closed(api, gateway.url) >= 1

        await eventually(closed, 60, "the stalled socket to be closed")
        assert await asyncio.to_thread(close_code_after_draining, stalled) == 4008
        # Reconnected, it gets everything from its cursor.
        caught_up = await api.connect(slow, url=gateway.ws_url)
        got = await caught_up.collect_messages(channel, total, timeout_s=120)
        assert [m["client_msg_id"] for m in got] == [f"big-{i}" for i in range(total)]


async def test_the_gateway_total_closes_slow_sockets_and_the_readers_get_everything(
    api: Api, stack: Stack
) -> None:
    # Each socket may queue 64 MiB, but the gateway only 4 MiB over all its sockets.
    async with extra_gateway(
        stack, PARLEY_OUTBOUND_QUEUE_BYTES=str(64 << 20), PARLEY_GATEWAY_OUTBOUND_BYTES=str(4 << 20)
    ) as gateway:
        sender = await api.new_device("bt_s")
        slow = [await api.new_device("bt_slow") for _ in range(2)]
        reader = await api.new_device("bt_r")
        channel = await api.group(sender, [d.user_id for d in (*slow, reader)])
        stalled = [await asyncio.to_thread(stalled_socket, gateway.port, d.token) for d in slow]
        s = await api.connect(sender)
        r = await api.connect(reader, url=gateway.ws_url)
        total = 150
        for i in range(total):
            await s.send_message(channel, f"{i:04}" + "t" * (BIG - 4), client_msg_id=f"t-{i}")
        got = await r.collect_messages(channel, total, timeout_s=120)
        assert [m["client_msg_id"] for m in got] == [f"t-{i}" for i in range(total)]

        async def both_closed() -> bool:
            return await slow_closed(api, gateway.url) >= 2

        await eventually(both_closed, 60, "both stalled sockets to be closed")
        for raw in stalled:
            assert await asyncio.to_thread(close_code_after_draining, raw) == 4008
