"""Several gateways: registry and discovery, a gateway killed under load, slow sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket as socketlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.client import Api, Device
from tests.push_receiver import PushReceiver
from tests.stack import Process, Stack


async def discovered(api: Api, device: Device) -> list[str]:
    response = await api.http.get("/v1/discovery", headers=device.auth)
    assert response.status_code == 200
    return [g["url"] for g in response.json()["gateways"]]


async def eventually(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def two_more(stack: Stack) -> AsyncIterator[list[Process]]:
    gateways = [await asyncio.to_thread(stack.start_gateway) for _ in range(2)]
    yield gateways
    for gateway in gateways:
        await asyncio.to_thread(gateway.stop)


async def test_discovery_ranks_live_gateways_the_same_everywhere_and_drops_dead_ones(
    api: Api, gateway: Process, two_more: list[Process]
) -> None:
    everyone = {gateway.ws_url, *(g.ws_url for g in two_more)}
    devices = [await api.new_device("disc") for _ in range(12)]

    async def all_three() -> bool:
        return set(await discovered(api, devices[0])) == everyone

    await eventually(all_three, 15, "every gateway to be announced")
    firsts = set()
    for device in devices:
        orders = []
        for g in [gateway, *two_more]:
            async with Api(g.url, g.ws_url) as other:
                orders.append(await discovered(other, device))
        assert orders[0] == orders[1] == orders[2]
        assert set(orders[0]) == everyone
        firsts.add(orders[0][0])
    assert len(firsts) >= 2  # users are spread over gateways, not all sent to one

    stopped, killed = two_more
    await asyncio.to_thread(stopped.stop)  # a graceful stop says "down" at once

    async def without_stopped() -> bool:
        return stopped.ws_url not in await discovered(api, devices[0])

    await eventually(without_stopped, 5, "a stopped gateway to leave discovery")
    await asyncio.to_thread(killed.kill)  # a killed one stops announcing and ages out

    async def only_the_first() -> bool:
        return await discovered(api, devices[0]) == [gateway.ws_url]

    await eventually(only_the_first, 15, "a killed gateway to leave discovery")


class Reader:
    """A device in a channel, on `url`: it reads everything live, sends `outgoing` (resending
    what was not `accepted` after a reconnect, under the same client_msg_id), and when its
    socket drops it asks discovery where to go and resumes from the last message it received."""

    def __init__(
        self,
        api: Api,
        device: Device,
        channel: str,
        total: int,
        url: str,
        outgoing: list[str] | None = None,
    ) -> None:
        self.api, self.device, self.channel, self.total = api, device, channel, total
        self.outgoing = outgoing or []
        self.accepted: set[str] = set()
        self.received: list[dict[str, Any]] = []
        self.urls: list[str] = [url]  # every gateway it connected to, in order
        self.closes: list[tuple[float, int, str]] = []  # (monotonic time, code, reason)

    def done(self) -> bool:
        return len(self.received) >= self.total and len(self.accepted) == len(self.outgoing)

    async def run(self) -> None:
        cursor: dict[str, str] = {}
        while not self.done():
            try:
                ws = await websockets.connect(self.urls[-1], max_size=None)
            except OSError:
                self.urls.append(await self.reachable())
                continue
            sender: asyncio.Task[None] | None = None
            try:
                hello = {"type": "hello", "token": self.device.token, "cursors": cursor}
                await ws.send(orjson.dumps(hello).decode())
                while not self.done():
                    frame = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame["type"] == "message":
                        self.received.append(frame)
                        cursor = {self.channel: frame["message_id"]}
                    elif frame["type"] == "accepted":
                        self.accepted.add(frame["client_msg_id"])
                    elif frame["type"] == "synced" and self.outgoing:
                        sender = asyncio.create_task(self.send_pending(ws))
            except (ConnectionClosed, OSError) as exc:
                if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
                    self.closes.append((time.monotonic(), exc.rcvd.code, exc.rcvd.reason))
                self.urls.append(await self.reachable())  # ask discovery where to go
            finally:
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await sender
                await ws.close()

    async def send_pending(self, ws: Any) -> None:
        for i, text in enumerate(self.outgoing):
            client_msg_id = f"{self.device.device_id}-{i}"
            if client_msg_id in self.accepted:
                continue
            frame = {
                "type": "send",
                "client_msg_id": client_msg_id,
                "channel_id": self.channel,
                "text": text,
            }
            await ws.send(orjson.dumps(frame).decode())
            await asyncio.sleep(0.05)

    async def reachable(self) -> str:
        """The first gateway discovery lists that accepts a connection (a dead one may still be
        listed until it ages out of the registry)."""
        while True:
            for candidate in await discovered(self.api, self.device):
                try:
                    probe = await websockets.connect(candidate, open_timeout=2)
                except OSError:
                    continue
                await probe.close()
                return candidate
            await asyncio.sleep(0.2)


async def delivered(readers: list[Reader], fraction: float) -> None:
    """Until readers together received `fraction` of all they expect."""
    goal = sum(r.total for r in readers)

    async def reached() -> bool:
        return sum(len(r.received) for r in readers) >= fraction * goal

    await eventually(reached, 90, f"{fraction:.0%} of the messages delivered")


async def send_while(
    api: Api, sender: Device, channel: str, total: int, interrupt: Any, readers: list[Reader]
) -> None:
    """Send `total` messages while `interrupt` runs; then check every reader got them all, once
    and in order, matching history."""

    async def send_all() -> None:
        s = await api.connect(sender)
        for i in range(total):
            await s.send_text(channel, f"f{i}", client_msg_id=f"fo-{i}")
            await asyncio.sleep(0.005)
        await s.collect_messages(channel, total, timeout=60)

    readers_done = asyncio.gather(*(r.run() for r in readers))
    await asyncio.sleep(0.5)
    await asyncio.gather(send_all(), interrupt())
    await asyncio.wait_for(readers_done, 90)
    history = [m["message_id"] for m in await api.all_history(sender, channel)]
    for reader in readers:
        assert [m["text"] for m in reader.received] == [f"f{i}" for i in range(total)]
        assert [m["message_id"] for m in reader.received] == history


async def test_gateway_sigkill_clients_resume_elsewhere_with_no_gap_duplicate_or_reorder(
    api: Api, stack: Stack
) -> None:
    doomed = await asyncio.to_thread(stack.start_gateway)
    sender = await api.new_device("fo_s")
    devices = [await api.new_device("fo_r") for _ in range(3)]
    channel = await api.group(sender, [d.user_id for d in devices])
    total = 300
    readers = [Reader(api, d, channel, total, doomed.ws_url) for d in devices]

    async def kill_midway() -> None:
        await asyncio.sleep(0.8)
        await asyncio.to_thread(doomed.kill)

    await send_while(api, sender, channel, total, kill_midway, readers)
    # The kill really interrupted them: each reader started on the doomed gateway and
    # finished on another.
    for reader in readers:
        assert reader.urls[-1] != doomed.ws_url


async def test_gateway_sigterm_drains_leaves_discovery_then_hands_sockets_off_gradually(
    api: Api, stack: Stack
) -> None:
    drain_s = 1.0
    doomed = await asyncio.to_thread(stack.start_gateway, PARLEY_GATEWAY_DRAIN_S=str(drain_s))
    sender = await api.new_device("dr_s")
    devices = [await api.new_device("dr_r") for _ in range(12)]
    channel = await api.group(sender, [d.user_id for d in devices])

    async def listed() -> bool:
        return doomed.ws_url in await discovered(api, sender)

    await eventually(listed, 15, "the new gateway to be announced")
    total = 600  # sent over 3 s at least: the drain (1.5 s) ends well before the stream
    readers = [Reader(api, d, channel, total, doomed.ws_url) for d in devices]

    async def stop_midway() -> None:
        await delivered(readers, 0.1)
        await asyncio.to_thread(doomed.stop)

    await send_while(api, sender, channel, total, stop_midway, readers)
    for reader in readers:
        # Told to go with 1012, and discovery no longer sent it back to the draining gateway.
        [(_, code, reason)] = reader.closes
        assert (code, reason) == (1012, "gateway draining: reconnect through discovery")
        assert len(reader.urls) == 2 and reader.urls[1] != doomed.ws_url
    closed_at = sorted(t for r in readers for t, _, _ in r.closes)
    assert closed_at[-1] - closed_at[0] >= drain_s / 2  # handed off as a stream, not a storm
    assert doomed.popen.returncode != -9  # it finished by itself, not killed for hanging


async def test_a_gateway_and_a_processor_killed_while_groups_chat_lose_and_double_nothing(
    api: Api, stack: Stack, gateway: Process, push_receiver: PushReceiver
) -> None:
    """The issue's acceptance run, scaled to the test machine: three gateways, two processor
    workers, groups chatting through all three; kill -9 a gateway and a worker mid-stream.
    Every member's stream equals the channel's history, and each offline member (with a push
    endpoint) gets exactly one push for the burst."""
    doomed, spare = [await asyncio.to_thread(stack.start_gateway) for _ in range(2)]
    worker = await asyncio.to_thread(stack.start_processor)
    urls = [gateway.ws_url, doomed.ws_url, spare.ws_url]
    groups, online, sends_each = 6, 4, 8
    readers: list[Reader] = []
    offline: dict[str, str] = {}  # offline user -> their group
    for g in range(groups):
        members = [await api.new_device(f"ac{g}") for _ in range(online)]
        away = await api.new_device(f"acoff{g}")
        await api.http.put(
            "/v1/push/endpoints/current",
            json={"platform": "fcm", "token": away.device_id},
            headers=away.auth,
        )
        channel = await api.group(members[0], [m.user_id for m in members[1:]] + [away.user_id])
        offline[away.user_id] = channel
        for i, member in enumerate(members):
            texts = [f"{g}.{i}.{k}" for k in range(sends_each)]
            url = urls[(g + i) % len(urls)]
            readers.append(Reader(api, member, channel, online * sends_each, url, texts))

    async def everyone_listed() -> bool:
        return set(await discovered(api, readers[0].device)) == set(urls)

    await eventually(everyone_listed, 15, "every gateway to be announced")

    worked: list[float] = []

    async def kill_both() -> None:
        # Mid-stream whatever the machine's speed: a quarter delivered, then half.
        await delivered(readers, 0.25)
        await asyncio.to_thread(doomed.kill)
        await delivered(readers, 0.5)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{worker.url}/metrics")).text
        worked.extend(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(
                ("parley_processor_messages_stored_total", "parley_processor_pushes_sent_total")
            )
        )
        await asyncio.to_thread(worker.kill)

    await asyncio.gather(
        asyncio.wait_for(asyncio.gather(*(r.run() for r in readers)), 150), kill_both()
    )
    for reader in readers:
        history = await api.all_history(reader.device, reader.channel)
        assert [m["message_id"] for m in reader.received] == [m["message_id"] for m in history]
        assert len(history) == online * sends_each
    # Both kills interrupted real work: readers moved off the gateway, the worker had stored
    # messages or sent pushes.
    assert any(r.urls[0] == doomed.ws_url and len(r.urls) > 1 for r in readers)
    assert sum(worked) > 0
    for user_id in offline:
        await push_receiver.wait_accepted(user_id, 1)
    await asyncio.sleep(1.0)
    for user_id, channel in offline.items():
        # One push: the same push id if the worker's death made it be sent again.
        pushes = push_receiver.accepted(user_id)
        assert {(p["push_id"], p["channel_id"]) for p in pushes} == {
            (pushes[0]["push_id"], channel)
        }
    await asyncio.to_thread(spare.stop)


async def test_a_socket_that_does_not_read_is_closed_and_catches_up_on_reconnect(
    api: Api, stack: Stack
) -> None:
    gateway = await asyncio.to_thread(stack.start_gateway, PARLEY_OUTBOUND_QUEUE_FRAMES="20")
    try:
        sender, slow = await api.new_device("slow_s"), await api.new_device("slow_r")
        channel = await api.direct(sender, slow.user_id)
        stalled = await asyncio.to_thread(stalled_socket, gateway.port, slow.token)
        s = await api.connect(sender)
        total, text = 600, "y" * 16_000
        for i in range(total):
            await s.send_text(channel, f"{i}:{text}", client_msg_id=f"slow-{i}")
        await s.collect_messages(channel, total, timeout=60)

        async def closed_for_slowness() -> bool:
            metrics = (await api.http.get(f"{gateway.url}/metrics")).text
            return "parley_gateway_slow_consumers_closed_total 1.0" in metrics

        await eventually(closed_for_slowness, 30, "the stalled socket to be closed")
        assert await asyncio.to_thread(close_code_after_draining, stalled) == 4008

        caught_up = await api.connect(slow, url=gateway.ws_url)
        got = await caught_up.collect_messages(channel, total, timeout=60)
        await caught_up.settle(0.5)
        assert [m["client_msg_id"] for m in caught_up.messages(channel)] == [
            f"slow-{i}" for i in range(total)
        ]
        assert len(got) == total
    finally:
        await asyncio.to_thread(gateway.stop)


def stalled_socket(port: int, token: str) -> socketlib.socket:
    """A WebSocket client that says hello and then never reads: a raw socket with a tiny
    receive window, so neither a client library nor the kernel absorbs the backlog."""
    raw = socketlib.socket()
    raw.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = orjson.dumps({"type": "hello", "token": token})
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    raw.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return raw


def close_code_after_draining(raw: socketlib.socket) -> int:
    """Read everything the server sent; the close code of its final close frame."""
    raw.settimeout(30)
    data = b""
    while chunk := raw.recv(1 << 20):
        data += chunk
    code = None
    at = 0
    while at < len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = struct.unpack(">H", data[at : at + 2])[0], at + 2
        elif length == 127:
            length, at = struct.unpack(">Q", data[at : at + 8])[0], at + 8
        if opcode == 0x8:
            code = struct.unpack(">H", data[at : at + 2])[0]
        at += length
    raw.close()
    assert code is not None
    return int(code)
