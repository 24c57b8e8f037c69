"""Several gateways: registry and discovery, a gateway killed under load, slow sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket as socketlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gateway.registry import FLEET_ANNOUNCEMENTS_PER_S, announce_interval_s
from parley_client import Client, Login, Session, SessionError
from schemas.events import GatewayAnnouncedV1
from schemas.ids import now_ms
from tests.conftest import Api, before_mark, eventually, marked, metric, push_marker
from tests.push_receiver import PushReceiver
from tests.stack import Process, Stack
from topics.definitions import gateways_topic

END = "end of stream"


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
        return set(await api.discovery(devices[0])) == everyone

    await eventually(all_three, 15, "every gateway to be announced")
    firsts = set()
    for device in devices:
        orders = []
        for g in [gateway, *two_more]:
            async with Client(g.url) as other:
                orders.append(await other.discovery(device))
        assert orders[0] == orders[1] == orders[2]
        assert set(orders[0]) == everyone
        firsts.add(orders[0][0])
    assert len(firsts) >= 2  # users are spread over gateways, not all sent to one

    stopped, killed = two_more
    await asyncio.to_thread(stopped.stop)  # a graceful stop says "down" at once

    async def without_stopped() -> bool:
        return stopped.ws_url not in await api.discovery(devices[0])

    await eventually(without_stopped, 5, "a stopped gateway to leave discovery")
    await asyncio.to_thread(killed.kill)  # a killed one stops announcing and ages out

    async def only_the_first() -> bool:
        return await api.discovery(devices[0]) == [gateway.ws_url]

    await eventually(only_the_first, 15, "a killed gateway to leave discovery")


def test_a_large_fleet_announces_less_often_so_its_announcements_stay_bounded() -> None:
    assert announce_interval_s(1, 2.0) == announce_interval_s(100, 2.0) == 2.0
    assert announce_interval_s(750, 2.0) == 15.0
    for fleet in (1, 100, 101, 750, 5000):
        # The fleet's announcements a second, each read by every gateway.
        assert fleet / announce_interval_s(fleet, 2.0) <= FLEET_ANNOUNCEMENTS_PER_S


async def test_an_announcement_keeps_a_gateway_live_for_the_time_it_carries(
    api: Api, stack: Stack
) -> None:
    """A gateway of a large fleet announces seldom and says for how long it is live: the others
    list it that long, not `registry_ttl_s` (6 s). One without `ttl_ms` (an earlier version)
    is judged by the reader's own time to live."""
    device = await api.new_device("ttl")
    ten_s_ago = now_ms() - 10_000

    def announced(name: str, **fields: Any) -> GatewayAnnouncedV1:
        url = f"ws://{name}.invalid/v1/ws"
        return GatewayAnnouncedV1(
            gateway_id=f"{name}:1", url=url, status="up", connections=0, **fields
        )

    seldom = announced("seldom", at_ms=ten_s_ago, ttl_ms=60_000)
    earlier = announced("earlier", at_ms=ten_s_ago)
    fresh = announced("fresh", at_ms=now_ms())  # read after the other two: their mark
    topic = gateways_topic(stack.settings).name
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in (seldom, earlier, fresh):
            await producer.send_and_wait(topic, event.encode(), key=event.gateway_id.encode())

        async def fresh_listed() -> bool:
            return fresh.url in await api.discovery(device)

        await eventually(fresh_listed, 15, "the fresh announcement to be read")
        urls = await api.discovery(device)
        assert seldom.url in urls
        assert earlier.url not in urls
    finally:
        for event in (seldom, earlier, fresh):  # gone from every other test's discovery
            down = event.model_copy(update={"status": "down", "at_ms": now_ms()})
            await producer.send_and_wait(topic, down.encode(), key=event.gateway_id.encode())
        await producer.stop()


class Reader:
    """A device in a channel, on `url`: it reads everything live, sends `outgoing` (resending
    what was not `accepted` after a reconnect, under the same client_msg_id), and when its
    socket drops it asks discovery where to go and resumes from the last message it received.
    It is done once it has `total` messages, or (None) the stream's END."""

    def __init__(
        self,
        api: Api,
        device: Login,
        channel: str,
        url: str,
        total: int | None = None,
        outgoing: list[str] | None = None,
    ) -> None:
        self.api, self.device, self.channel, self.total = api, device, channel, total
        self.outgoing = outgoing or []
        self.accepted: set[str] = set()
        self.received: list[dict[str, Any]] = []
        self.urls: list[str] = [url]  # every gateway it connected to, in order
        self.closes: list[tuple[int, str]] = []  # (code, reason) of each close it was sent
        self.synced = asyncio.Event()  # its first session is synced

    def done(self) -> bool:
        if self.total is None:
            got = bool(self.received) and self.received[-1]["text"] == END
        else:
            got = len(self.received) >= self.total
        return got and len(self.accepted) == len(self.outgoing)

    async def run(self) -> None:
        cursor: dict[str, str] = {}
        while not self.done():
            try:
                session = await Session.open(self.urls[-1], keep_frames=False)
            except SessionError:  # unreachable
                self.urls.append(await self.reachable())
                continue
            sender: asyncio.Task[None] | None = None
            try:
                await session.send_hello(self.device.token, cursor)
                while not self.done():
                    frame = await session.next(30)
                    if frame["type"] == "message":
                        self.received.append(frame)
                        cursor = {self.channel: frame["message_id"]}
                    elif frame["type"] == "accepted":
                        self.accepted.add(frame["client_msg_id"])
                    elif frame["type"] == "synced":
                        self.synced.set()
                        if self.outgoing:
                            sender = asyncio.create_task(self.send_pending(session))
            except (SessionError, TimeoutError) as exc:
                if isinstance(exc, SessionError) and exc.close_code is not None:
                    self.closes.append((exc.close_code, exc.close_reason or ""))
                self.urls.append(await self.reachable())  # ask discovery where to go
            finally:
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, SessionError):
                        await sender
                await session.close()

    async def send_pending(self, session: Session) -> None:
        for i, text in enumerate(self.outgoing):
            client_msg_id = f"{self.device.device_id}-{i}"
            if client_msg_id in self.accepted:
                continue
            await session.send_message(self.channel, text, client_msg_id)
            await asyncio.sleep(0.05)  # pacing: a conversation, not a burst

    async def reachable(self) -> str:
        """The first gateway discovery lists that accepts a connection (a dead one may still be
        listed until it ages out of the registry)."""
        while True:
            for candidate in await self.api.discovery(self.device):
                try:
                    probe = await Session.open(candidate, open_timeout_s=2)
                except SessionError:
                    continue
                await probe.close()
                return candidate
            await asyncio.sleep(0.2)  # polling discovery until a gateway answers


async def delivered(readers: list[Reader], fraction: float) -> None:
    """Until readers together received `fraction` of all they expect."""
    goal = sum(r.total or 0 for r in readers)

    async def reached() -> bool:
        return sum(len(r.received) for r in readers) >= fraction * goal

    await eventually(reached, 90, f"{fraction:.0%} of the messages delivered")


async def delivered_count(readers: list[Reader], each: int) -> None:
    """Until every reader received `each` messages."""

    async def reached() -> bool:
        return all(len(r.received) >= each for r in readers)

    await eventually(reached, 90, f"{each} messages delivered to every reader")


async def send_while(
    api: Api,
    sender: Login,
    channel: str,
    readers: list[Reader],
    interrupt: Callable[[], Awaitable[None]],
    total: int | None = None,
) -> list[str]:
    """Once every reader is synced, send a stream while `interrupt` runs: `total` messages,
    or (None) until the interrupt is over, then a few more and END. Then check every reader
    got them all, once and in order, matching history. Returns the texts sent."""
    readers_done = asyncio.gather(*(r.run() for r in readers))
    await asyncio.wait_for(asyncio.gather(*(r.synced.wait() for r in readers)), 60)
    s = await api.connect(sender)
    interrupting = asyncio.create_task(interrupt())
    texts: list[str] = []
    after = 0  # sent since the interrupt was over
    while (len(texts) < total) if total is not None else (after < 20):
        texts.append(f"f{len(texts)}")
        await s.send_message(channel, texts[-1], client_msg_id=f"fo-{len(texts)}")
        after += interrupting.done()
        await asyncio.sleep(0.005)  # pacing: a stream, not one burst
    if total is None:
        texts.append(END)
        await s.send_message(channel, END)
    await interrupting
    await s.collect_messages(channel, len(texts), timeout_s=60)
    await asyncio.wait_for(readers_done, 90)
    history = [m["message_id"] for m in await api.all_history(sender, channel)]
    for reader in readers:
        assert [m["text"] for m in reader.received] == texts
        assert [m["message_id"] for m in reader.received] == history
    return texts


async def test_gateway_sigkill_clients_resume_elsewhere_with_no_gap_duplicate_or_reorder(
    api: Api, stack: Stack
) -> None:
    doomed = await asyncio.to_thread(stack.start_gateway)
    sender = await api.new_device("fo_s")
    devices = [await api.new_device("fo_r") for _ in range(3)]
    channel = await api.group(sender, [d.user_id for d in devices])
    total = 300
    readers = [Reader(api, d, channel, doomed.ws_url, total) for d in devices]

    async def kill_midway() -> None:
        await delivered(readers, 0.25)
        await asyncio.to_thread(doomed.kill)

    await send_while(api, sender, channel, readers, kill_midway, total)
    # The kill really interrupted them: each reader started on the doomed gateway and
    # finished on another.
    for reader in readers:
        assert reader.urls[-1] != doomed.ws_url


async def test_gateway_sigterm_leaves_discovery_then_hands_its_sockets_off_a_slice_at_a_time(
    api: Api, stack: Stack
) -> None:
    # 12 sockets over 2 s: one per slice (gateway/drain.py), 0.1 s apart.
    doomed = await asyncio.to_thread(stack.start_gateway, PARLEY_GATEWAY_DRAIN_S="2.0")
    sender = await api.new_device("dr_s")
    devices = [await api.new_device("dr_r") for _ in range(12)]
    channel = await api.group(sender, [d.user_id for d in devices])

    async def listed() -> bool:
        return doomed.ws_url in await api.discovery(sender)

    await eventually(listed, 15, "the new gateway to be announced")
    readers = [Reader(api, d, channel, doomed.ws_url) for d in devices]
    # What the draining gateway holds, and whether discovery lists it, asked in that order
    # again and again until it is gone.
    seen: list[tuple[int, bool]] = []

    async def watch_the_drain() -> None:
        async with Client(doomed.url) as draining:
            while True:
                try:
                    held = (await draining.healthz())["connections"]
                except httpx.TransportError:
                    return  # it has exited
                seen.append((held, doomed.ws_url in await api.discovery(sender)))
                await asyncio.sleep(0.02)  # polling, many times per slice

    async def stop_midway() -> None:
        await delivered_count(readers, 50)
        watching = asyncio.create_task(watch_the_drain())
        await asyncio.to_thread(doomed.stop)
        await watching

    await send_while(api, sender, channel, readers, stop_midway)
    for reader in readers:
        # Told to go with 1012, and discovery no longer sent it back to the draining gateway.
        assert reader.closes == [(1012, "gateway draining: reconnect through discovery")]
        assert len(reader.urls) == 2 and reader.urls[1] != doomed.ws_url
    # Handed off as a stream, not a storm: it was seen holding fewer than all its sockets
    # and more than none, at several levels on the way down.
    assert len({held for held, _ in seen if 0 < held < len(readers)}) >= 3, seen
    # And no socket was let go while discovery still listed the gateway.
    assert all(not listed for held, listed in seen if held < len(readers)), seen
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
    offline: dict[str, tuple[Login, str]] = {}  # offline user -> (device, their group)
    for g in range(groups):
        members = [await api.new_device(f"ac{g}") for _ in range(online)]
        away = await api.new_device(f"acoff{g}")
        await api.register_push(away, "fcm", away.device_id)
        channel = await api.group(members[0], [m.user_id for m in members[1:]] + [away.user_id])
        offline[away.user_id] = (away, channel)
        for i, member in enumerate(members):
            texts = [f"{g}.{i}.{k}" for k in range(sends_each)]
            url = urls[(g + i) % len(urls)]
            readers.append(Reader(api, member, channel, url, online * sends_each, texts))

    async def everyone_listed() -> bool:
        return set(await api.discovery(readers[0].device)) == set(urls)

    await eventually(everyone_listed, 15, "every gateway to be announced")

    worked: list[float] = []

    async def kill_both() -> None:
        # Mid-stream whatever the machine's speed: a quarter delivered, then half.
        await delivered(readers, 0.25)
        await asyncio.to_thread(doomed.kill)
        await delivered(readers, 0.5)
        for name in (
            "parley_processor_messages_stored_total",
            "parley_processor_pushes_sent_total",
        ):
            worked.append(await metric(worker.url, name))
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
    # A push the worker's death made be sent again would come before the marker's.
    marker = await push_marker(
        api, push_receiver, readers[0].device, [device for device, _ in offline.values()]
    )
    for user_id, (_, channel) in offline.items():
        # One push: the same push id if the worker's death made it be sent again.
        pushes = [p for p in push_receiver.accepted(user_id) if p["channel_id"] != marker]
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
            await s.send_message(channel, f"{i}:{text}", client_msg_id=f"slow-{i}")
        await s.collect_messages(channel, total, timeout_s=60)

        async def closed_for_slowness() -> bool:
            return await metric(gateway.url, "parley_gateway_slow_consumers_closed_total") == 1

        await eventually(closed_for_slowness, 30, "the stalled socket to be closed")
        assert await asyncio.to_thread(close_code_after_draining, stalled) == 4008

        caught_up = await api.connect(slow, url=gateway.ws_url)
        await caught_up.collect_messages(channel, total, timeout_s=60)
        await marked(s, channel, caught_up)  # a late duplicate would come before the mark
        assert [m["client_msg_id"] for m in before_mark(caught_up, channel)] == [
            f"slow-{i}" for i in range(total)
        ]
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
