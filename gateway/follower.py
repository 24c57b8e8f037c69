"""Follows chosen partitions of a topic and hands each record to a dispatch function.

Partitions are assigned by hand (no consumer group): a partition is read while at least one key
in it is watched, starting from its end when first watched. `watch` returns only once that
start position is fixed, so every record produced after `watch` returns is seen. A gateway
follows the inbox partitions of its connected users (gateway/inbox.py) and the presence-change
partitions of the users its sockets subscribed to (gateway/presence.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.trace import SpanKind

from schemas.settings import Settings
from topics import tracing
from topics.definitions import Topic, key_partition

log = logging.getLogger("parley.follower")


class PartitionFollower:
    def __init__(self, settings: Settings, topic: Topic, dispatch: Callable[[bytes], None]) -> None:
        self._topic = topic.name
        self._partitions = topic.partitions
        self._dispatch = dispatch
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            # A fetch to a broker that hangs (paused, not dead) gives up after this; the
            # partitions are then fetched from their new leaders.
            request_timeout_ms=settings.kafka_fetch_max_wait_ms + settings.kafka_request_timeout_ms,
            max_partition_fetch_bytes=settings.kafka_max_request_bytes,
            fetch_max_bytes=4 * settings.kafka_max_request_bytes,
        )
        self._watchers: Counter[int] = Counter()
        self._ready: dict[int, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._assigned = asyncio.Event()  # set while any partition is followed
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"follow-{self._topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def watch(self, key: str) -> None:
        """Read the key's partition from now on (returns once its position is fixed)."""
        partition = key_partition(key, self._partitions)
        self._watchers[partition] += 1
        ready = self._ready.get(partition)
        if ready is None:
            ready = self._ready[partition] = asyncio.get_running_loop().create_future()
            try:
                async with self._lock:
                    await self._reassign(added=TopicPartition(self._topic, partition))
                ready.set_result(None)
            except BaseException as exc:
                # The caller still calls `unwatch`; the next watcher tries again.
                del self._ready[partition]
                ready.set_exception(exc)
                ready.exception()
                raise
        # Later watchers of the partition wait for the first one's position to be fixed.
        await asyncio.shield(ready)

    async def unwatch(self, key: str) -> None:
        partition = key_partition(key, self._partitions)
        self._watchers[partition] -= 1
        if self._watchers[partition] <= 0:
            del self._watchers[partition]
            self._ready.pop(partition, None)
            async with self._lock:
                await self._reassign(added=None)

    async def _reassign(self, added: TopicPartition | None) -> None:
        # assign() forgets positions, so those of partitions kept are carried over by hand.
        kept = {
            tp: await self._consumer.position(tp)
            for tp in self._consumer.assignment()
            if tp.partition in self._watchers and tp != added
        }
        wanted = set(kept) | ({added} if added else set())
        self._consumer.assign(list(wanted))
        if wanted:
            self._assigned.set()
        else:
            self._assigned.clear()
        for tp, offset in kept.items():
            self._consumer.seek(tp, offset)
        if added is not None:
            await self._consumer.seek_to_end(added)
            await self._consumer.position(added)

    def _traced(self, value: bytes, headers: tracing.Headers) -> None:
        """Dispatch a record that carries a trace context, in a span of that trace."""
        parent = tracing.parent_of(headers)
        if parent is None:
            self._dispatch(value)
            return
        with tracing.span("parley.deliver", parent, SpanKind.CONSUMER):
            self._dispatch(value)

    async def _run(self) -> None:
        while True:
            try:
                async with self._lock:
                    if not self._consumer.assignment():
                        batches: dict[TopicPartition, list[Any]] = {}
                    else:
                        batches = await self._consumer.getmany(timeout_ms=50, max_records=2000)
                if not batches:
                    # Nothing followed: sleep until something is (no polling while idle).
                    await self._assigned.wait()
                    continue
                for records in batches.values():
                    for record in records:
                        if tracing.enabled() and record.headers:
                            self._traced(record.value, record.headers)
                        else:
                            self._dispatch(record.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following %s failed; continuing", self._topic)
                await asyncio.sleep(0.5)
