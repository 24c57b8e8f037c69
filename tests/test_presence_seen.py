"""Aggregated heartbeats (`presence.seen`): a gateway publishes the sockets it saw heartbeat in
an interval as one record per presence partition, not one event per heartbeat, and presence
keeps its guarantees on those records alone. Read from the topic itself, from the offsets it
had before the sockets connected."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.publisher import SEEN_INTERVALS_PER_TIMEOUT, Publisher
from processors.presence import PresenceTracker
from schemas.events import PresenceEventV1, PresenceSeenV1
from schemas.settings import Settings
from storage.stores import Stores
from tests.conftest import Api, extra_gateway
from tests.stack import Stack
from tests.test_presence import BEAT_S, TIMEOUT_S, presence_of, subscribe, wait_status
from topics.definitions import key_partition, presence_topic

USERS = 10
SOCKETS_PER_USER = 10  # 100 sockets, each heartbeating every BEAT_S


async def _end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    topic = presence_topic(settings).name
    partitions = [TopicPartition(topic, p) for p in range(settings.presence_partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def _records_since(
    settings: Settings, start: dict[TopicPartition, int]
) -> list[dict[str, Any]]:
    """Every record of the presence topic from `start` to its end now, decoded."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        consumer.assign(list(start))
        end = await consumer.end_offsets(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        for tp in start:
            while await consumer.position(tp) < end[tp]:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    out += [orjson.loads(r.value) for r in records if r.offset < end[tp]]
    finally:
        await consumer.stop()
    return out


async def test_heartbeating_sockets_publish_one_seen_record_per_partition_per_interval(
    api: Api, stack: Stack, settings: Settings, stores: Stores
) -> None:
    gateway_id = f"seen-{uuid.uuid4().hex[:8]}"
    watcher, users = await api.new_device(), [await api.new_device() for _ in range(USERS)]
    await api.make_friends(watcher, users[0])
    w = await api.connect(watcher)  # on the shared gateway
    assert [f["status"] for f in await subscribe(w, users[0].user_id)] == ["offline"]
    start = await _end_offsets(settings)
    env = {"PARLEY_GATEWAY_ID": gateway_id, "PARLEY_MAX_SOCKETS_PER_DEVICE": "100"}
    async with extra_gateway(stack, **env) as gateway, contextlib.AsyncExitStack() as beating:
        began = time.monotonic()
        sockets = []
        for user in users:
            for _ in range(SOCKETS_PER_USER):
                # Each heartbeats from its connect on: connecting them all may take longer
                # than a timeout on a busy machine.
                sockets.append(await api.connect(user, url=gateway.ws_url))
                await beating.enter_async_context(sockets[-1].heartbeating(BEAT_S))
        await wait_status(w, users[0].user_id, "online")
        # Several timeouts on heartbeats alone: no flap.
        for _ in range(3):
            await w.settle(TIMEOUT_S)
            assert presence_of(w, users[0].user_id) == ["offline", "online"]
        state = (await stores.presence.get([users[0].user_id]))[users[0].user_id]
        assert (state.status, state.connected) == ("online", True)
        elapsed = time.monotonic() - began
        records = await _records_since(settings, start)
        for socket in sockets:
            await socket.close()

    ours = {u.user_id for u in users}
    events = [r for r in records if r["type"] == "presence.event" and r["user_id"] in ours]
    seen = [r for r in records if r["type"] == "presence.seen" and r["gateway_id"] == gateway_id]
    # Only the connects were published one by one: no heartbeat event.
    assert [e["kind"] for e in events] == ["connect"] * len(sockets)
    # At most one record per partition per interval (and one interval more, for the edges),
    # where one event per heartbeat passed on would have been one per socket per second.
    interval_s = TIMEOUT_S / SEEN_INTERVALS_PER_TIMEOUT
    bound = settings.presence_partitions * (math.ceil(elapsed / interval_s) + 1)
    assert 0 < len(seen) <= bound, (len(seen), bound)
    heartbeats_passed_on = len(sockets) * elapsed / (TIMEOUT_S / 4)
    assert len(seen) < heartbeats_passed_on / 4
    # Each names the sockets of its own partition, and every socket was seen.
    connections = set()
    for record in seen:
        for user_id, _device, connection_id, _at in record["seen"]:
            assert user_id in ours
            connections.add(connection_id)
    assert len(connections) == len(sockets)


def _event(kind: str, connection: str, at_ms: int) -> PresenceEventV1:
    return PresenceEventV1.model_validate(
        {
            "kind": kind,
            "user_id": "u",
            "device_id": "d",
            "connection_id": connection,
            "at_ms": at_ms,
        }
    )


def _seen(*entries: tuple[str, int]) -> PresenceSeenV1:
    return PresenceSeenV1(
        gateway_id="g", partition=0, at_ms=0, seen=[("u", "d", c, at) for c, at in entries]
    )


def test_a_seen_entry_read_after_its_sockets_disconnect_changes_nothing() -> None:
    """A socket's sighting and its disconnect, on one partition, in either order, and a
    sighting of it long after: the same decisions. Nothing revives a closed socket."""
    timeout = 4_000
    finals = []
    for late in (False, True):
        tracker = PresenceTracker(timeout)
        tracker.apply(_event("connect", "c1", 1_000), 1_000)
        seen, disconnect = _seen(("c1", 2_000)), _event("disconnect", "c1", 2_500)
        if late:
            tracker.apply(disconnect, 3_000)
            assert tracker.apply_seen(seen, 3_000) == []
        else:
            tracker.apply_seen(seen, 3_000)
            tracker.apply(disconnect, 3_000)
        assert tracker.apply_seen(_seen(("c1", 2_400)), 3_100) == []
        [change] = tracker.expire(2_500 + timeout)  # one timeout after the disconnect
        finals.append(change.presence)
        assert tracker.apply_seen(_seen(("c1", 2_400)), 2_500 + timeout + 1) == []
    assert finals[0] == finals[1]
    assert (finals[0].status, finals[0].connected, finals[0].last_active_ms) == (
        "offline",
        False,
        2_500,
    )


def test_seen_entries_keep_a_user_online_and_connected_as_heartbeats_do() -> None:
    timeout = 4_000
    old, new = PresenceTracker(timeout), PresenceTracker(timeout)
    for tracker in (old, new):
        tracker.apply(_event("connect", "c1", 0), 0)
    for at in range(1_000, 20_000, 1_000):
        assert old.apply(_event("heartbeat", "c1", at), at + 500) is None
        assert new.apply_seen(_seen(("c1", at)), at + 500) == []
        assert old.expire(at + 500) == new.expire(at + 500) == []
    [went_old], [went_new] = old.expire(19_000 + timeout), new.expire(19_000 + timeout)
    assert went_old == went_new
    assert (went_new.presence.status, went_new.presence.last_active_ms) == ("offline", 19_000)


class _Producer:
    """Stands in for the presence producer: keeps what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int | None]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((orjson.loads(value), partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def stop(self) -> None:
        pass


async def test_a_disconnect_leaves_the_gateway_after_every_seen_record_naming_its_socket() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", heartbeat_timeout_s=0.8)  # 0.1 s interval
    publisher = Publisher(settings)
    producer, unused = _Producer(), publisher._presence_producer
    await unused.stop()  # never started: closed, so that it is not reported unclosed
    publisher._presence_producer = producer  # type: ignore[assignment]
    for connection in ("c1", "c2"):
        publisher.presence("connect", "u", "d", connection)
        publisher.presence("heartbeat", "u", "d", connection)
    await asyncio.sleep(0.25)  # an interval's record names both
    publisher.presence("heartbeat", "u", "d", "c1")
    publisher.presence("heartbeat", "u", "d", "c2")
    publisher.presence("disconnect", "u", "d", "c1")  # before its interval ended
    await asyncio.sleep(0.25)
    await publisher.stop()
    kinds = [
        (r["kind"], r["connection_id"])
        if r["type"] == "presence.event"
        else ("seen", tuple(entry[2] for entry in r["seen"]))
        for r, _ in producer.sent
    ]
    assert kinds == [
        ("connect", "c1"),
        ("connect", "c2"),
        ("seen", ("c1", "c2")),
        ("disconnect", "c1"),
        ("seen", ("c2",)),
    ]
    partition = key_partition("u", settings.presence_partitions)
    assert all(p == partition for r, p in producer.sent if r["type"] == "presence.seen")
