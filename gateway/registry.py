"""The gateway registry: every gateway announces itself on `parley.gateways.v1` (the role
ZooKeeper plays in classic designs, done with the broker) and reads everyone's announcements.

A gateway is live while its last announcement is younger than the time to live it carries;
one that stops announcing (killed) drops out within that time, one that shuts down says so at
once. Every gateway reads every announcement, so a fleet of N announcing every interval costs
N² / interval reads: a gateway announces every `registry_interval_s`, or less often once the
fleet is large enough that its announcements would pass `FLEET_ANNOUNCEMENTS_PER_S`, and
stretches its time to live in proportion (750 gateways: every 15 s, live for 45 s). Discovery
ranks live gateways for a user by rendezvous hashing over the user's inbox partition: every
gateway computes the same order, the first one is the natural home of that partition, and when
a gateway leaves only its users move.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from schemas.events import GatewayAnnouncedV1
from schemas.ids import now_ms
from schemas.settings import Settings
from topics.definitions import gateways_topic, inbox_partition

log = logging.getLogger("parley.registry")

RECENT_RECORDS = 1000  # more than enough to see every live gateway's latest announcement
REGISTRY_FETCH_WAIT_MS = 5000
# The whole fleet's announcements a second, at most (each read by every gateway).
FLEET_ANNOUNCEMENTS_PER_S = 50.0


def announce_interval_s(live: int, floor_s: float) -> float:
    """How often a gateway announces itself when `live` gateways are known: every `floor_s`,
    or less often, so that the fleet's announcements stay within FLEET_ANNOUNCEMENTS_PER_S."""
    return max(floor_s, live / FLEET_ANNOUNCEMENTS_PER_S)


@dataclass(frozen=True)
class Gateway:
    gateway_id: str
    url: str
    connections: int
    seen_ms: int
    expires_ms: int  # live until then, unless it announces again


def rank(gateways: list[Gateway], partition: int) -> list[Gateway]:
    """Rendezvous (highest random weight) order of gateways for an inbox partition."""

    def weight(g: Gateway) -> int:
        digest = hashlib.blake2b(f"{g.gateway_id}/{partition}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(gateways, key=weight, reverse=True)


class GatewayRegistry:
    def __init__(self, settings: Settings, connections: Callable[[], int]) -> None:
        self.gateway_id = settings.gateway_id or f"{socket.gethostname()}:{settings.http_port}"
        self._url = settings.ws_url()
        self._connections = connections
        self._floor_s = settings.registry_interval_s
        self._ttl_ms = int(settings.registry_ttl_s * 1000)
        # The time to live stays this many intervals whatever the interval (3 by default).
        self._ttl_intervals = settings.registry_ttl_s / settings.registry_interval_s
        self._inbox_partitions = settings.inbox_partitions
        self._topic = gateways_topic(settings).name
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            # Its one partition is assigned once and never changes, and the broker answers a
            # waiting fetch as soon as an announcement arrives: the wait only sets how often an
            # idle gateway asks again (every 5 s, not every 0.5 s: the broker's idle work).
            fetch_max_wait_ms=REGISTRY_FETCH_WAIT_MS,
        )
        self._known: dict[str, Gateway] = {}
        self._left = False

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        tp = TopicPartition(self._topic, 0)
        self._consumer.assign([tp])
        end = (await self._consumer.end_offsets([tp]))[tp]
        self._consumer.seek(tp, max(end - RECENT_RECORDS, 0))
        await self._announce("up")
        self._announcing = asyncio.create_task(self._announce_loop(), name="registry-announce")
        self._reading = asyncio.create_task(self._read_loop(), name="registry-read")

    async def leave(self) -> None:
        """Stop announcing and say `down` now: every gateway drops this one from discovery,
        while this one keeps reading the registry (to answer discovery during a drain)."""
        self._announcing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._announcing
        if not self._left:
            await self._announce("down")
            self._left = True

    async def stop(self) -> None:
        for task in (self._announcing, self._reading):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._left:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._announce("down"), 5)
        await self._producer.stop()
        await self._consumer.stop()

    def live(self) -> list[Gateway]:
        now = now_ms()
        return [g for g in self._known.values() if g.expires_ms > now]

    def _interval_s(self) -> float:
        return announce_interval_s(len(self.live()), self._floor_s)

    def urls_for(self, user_id: str) -> list[str]:
        """Live gateways best first for this user; this gateway alone if none is known yet."""
        ranked = rank(self.live(), inbox_partition(user_id, self._inbox_partitions))
        return [g.url for g in ranked] or [self._url]

    async def _announce(self, status: Literal["up", "down"]) -> None:
        event = GatewayAnnouncedV1(
            gateway_id=self.gateway_id,
            url=self._url,
            status=status,
            connections=self._connections(),
            at_ms=now_ms(),
            ttl_ms=int(self._interval_s() * self._ttl_intervals * 1000),
        )
        await self._producer.send_and_wait(
            self._topic, event.encode(), key=self.gateway_id.encode()
        )

    async def _announce_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s())
            try:
                await self._announce("up")
            except Exception:
                log.exception("announcing this gateway failed")

    async def _read_loop(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500)
            except Exception:
                log.exception("reading the gateway registry failed")
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._apply(record.value)

    def _apply(self, raw: bytes) -> None:
        try:
            event = GatewayAnnouncedV1.model_validate_json(raw)
        except ValidationError:
            log.error("skipping an unreadable gateway announcement")
            return
        if event.status == "down":
            self._known.pop(event.gateway_id, None)
            return
        known = self._known.get(event.gateway_id)
        if known is None or event.at_ms >= known.seen_ms:
            ttl_ms = event.ttl_ms if event.ttl_ms is not None else self._ttl_ms
            self._known[event.gateway_id] = Gateway(
                event.gateway_id, event.url, event.connections, event.at_ms, event.at_ms + ttl_ms
            )
