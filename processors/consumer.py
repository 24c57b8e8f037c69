"""The processor's hot topics, read in batches on the worker's own event loop.

One aiokafka consumer per process reads every hot topic (`parley.messages.v1`,
`parley.stored.v1`, `parley.inbox.v1` for pushes): one fetch session with the broker however
many topics, and no hand-off to a consumer thread. `getmany` returns whatever has arrived, so a
batch is never held back by a timer: idle, the consumer sleeps in the broker's long poll.

Invariants (docs/architecture.md):
- Per partition, one batch at a time, in offset order: what arrives while a batch runs waits
  for it (and the partition is paused once `processor_batch_max` records wait), so a
  partition whose batch waits (a lock, a retry) holds up only itself.
- At-least-once: an offset is committed only after its batch's handler returned. A crash, a
  revoked partition or a handler that never returns repeats the batch; it never skips it.
- One error policy: a handler retries what it can itself (the pipeline parks what can never be
  stored on the dead-letter topic); anything it raises is retried here, with capped, jittered
  backoff, and the partition waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from processors import metrics
from schemas.settings import Settings

log = logging.getLogger("parley.consumer")

BatchHandler = Callable[[list[bytes]], Awaitable[None]]

# What a gathering consumer's fetch waits for (or its `gather_s`).
GATHER_BYTES = 1024 * 1024
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True)
class Route:
    """A topic and what handles its batches."""

    topic: str
    # The handler of one partition, made when the partition first has records (a partition's
    # state, such as the pipeline's sequencer, lives in it and is dropped when it is revoked).
    open: Callable[[int], BatchHandler]


class Gathered:
    """One handler call for the batches of many partitions: each partition's batch joins the
    next call, made `window_s` after the first batch of it arrived, and returns when that call
    returned (so each partition's offsets are committed only after its records were handled).

    For consumers whose cost is per call, not per record (the notifier's queries, the
    indexer's insert): a burst over many partitions costs one call instead of one each. If the
    call fails, every partition that joined it retries its own batch.
    """

    def __init__(self, handle: BatchHandler, window_s: float) -> None:
        self._handle = handle
        self._window_s = window_s
        self._pending: list[bytes] = []
        self._call: asyncio.Future[None] | None = None

    async def __call__(self, batch: list[bytes]) -> None:
        self._pending += batch
        if self._call is None:
            self._call = asyncio.ensure_future(self._after_window())
        # Shielded: a partition revoked while waiting must not cancel the others' call.
        await asyncio.shield(self._call)

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window_s)
        # What arrives from now on joins the next call.
        batch, self._pending, self._call = self._pending, [], None
        await self._handle(batch)


def backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter: seconds to wait before retry `attempt`."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**attempt))


class PartitionedConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads the routes' topics as one consumer group member and runs each partition's batches
    in order, partitions side by side."""

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        routes: Iterable[Route],
        *,
        gather_s: float = 0.0,
    ) -> None:
        """`gather_s` > 0: the broker holds a fetch until it has `GATHER_BYTES` or `gather_s`
        passed, so a consumer that is in no hurry wakes (and costs the broker a fetch) at most
        that often under light load, and per batch of records under heavy load. At 0 a fetch
        returns as soon as one record arrives: the delivery path."""
        self._routes = {route.topic: route for route in routes}
        self._settings = settings
        self._group_id = group_id
        self._gather_s = gather_s
        # Made in `run`: aiokafka's clients belong to the loop they are made in.
        self._consumer: AIOKafkaConsumer | None = None
        self._handlers: dict[TopicPartition, BatchHandler] = {}
        self._running: dict[TopicPartition, asyncio.Task[None]] = {}
        # Fetched, not yet handled: per partition, (values, the offset after them) in order.
        self._queued: dict[TopicPartition, list[tuple[list[bytes], int]]] = {}
        # Processed but not yet committed: the offset to commit per partition.
        self._done: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._assigned = asyncio.Event()

    def _client(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=self._group_id,
            client_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The broker answers a waiting fetch as soon as a record arrives: the wait bounds
            # only how often an idle consumer asks again.
            fetch_max_wait_ms=self._fetch_wait_ms,
            fetch_min_bytes=GATHER_BYTES if self._gather_s > 0 else 1,
            max_partition_fetch_bytes=self._settings.kafka_max_request_bytes,
            fetch_max_bytes=4 * self._settings.kafka_max_request_bytes,
            session_timeout_ms=int(self._settings.processor_session_timeout_s * 1000),
            heartbeat_interval_ms=int(
                max(self._settings.processor_session_timeout_s / 6, 0.2) * 1000
            ),
            max_poll_interval_ms=300_000,
        )

    @property
    def _fetch_wait_ms(self) -> int:
        if self._gather_s > 0:
            return int(self._gather_s * 1000)
        return self._settings.kafka_fetch_max_wait_ms

    def _member(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "used only while running"
        return self._consumer

    @property
    def ready(self) -> bool:
        """True once this member took part in an assignment (an empty one included)."""
        return self._assigned.is_set()

    @property
    def partitions(self) -> int:
        """How many partitions (of all its topics) this member owns now."""
        return 0 if self._consumer is None else len(self._consumer.assignment())

    async def run(self) -> None:
        """Consume until cancelled; then finish the batches in hand, commit and leave."""
        consumer = self._consumer = self._client()
        await consumer.start()
        consumer.subscribe(list(self._routes), listener=self)
        try:
            while True:
                fetched = await consumer.getmany(
                    timeout_ms=self._fetch_wait_ms,
                    max_records=self._settings.processor_batch_max,
                )
                for tp, records in fetched.items():
                    self._take(tp, [r.value for r in records], records[-1].offset + 1)
                await self._commit_due()
        finally:
            with contextlib.suppress(Exception):
                await self._finish(list(self._running), timeout_s=10.0)
                await self._commit()
            await consumer.stop()

    def _take(self, tp: TopicPartition, values: list[bytes], next_offset: int) -> None:
        """Queue records of a partition; start its runner unless one is at work."""
        queued = self._queued.setdefault(tp, [])
        queued.append((values, next_offset))
        if tp in self._running:
            # Its batch in hand comes first. Fetching goes on meanwhile (a paused partition
            # would wait for the broker's next fetch, up to a whole fetch wait, once resumed);
            # paused only when a batch's worth of records or bytes waits, so memory stays
            # bounded.
            records = sum(len(v) for v, _ in queued)
            size = sum(len(value or b"") for v, _ in queued for value in v)
            if (
                records >= self._settings.processor_batch_max
                or size >= self._settings.kafka_max_request_bytes
            ):
                self._member().pause(tp)
            return
        handler = self._handlers.get(tp)
        if handler is None:
            handler = self._handlers[tp] = self._routes[tp.topic].open(tp.partition)
        self._running[tp] = asyncio.create_task(self._run(tp, handler))

    async def _run(self, tp: TopicPartition, handler: BatchHandler) -> None:
        """Handle the partition's queued records, a batch at a time, until none is left."""
        try:
            while queued := self._queued.pop(tp, None):
                values = [value for batch, _ in queued for value in batch]
                await self._handle(tp, handler, values)
                self._done[tp] = queued[-1][1]
                if tp in self._member().paused():
                    self._member().resume(tp)
        finally:
            if self._running.get(tp) is asyncio.current_task():
                del self._running[tp]

    async def _handle(self, tp: TopicPartition, handler: BatchHandler, values: list[bytes]) -> None:
        attempt = 0
        while True:
            try:
                await handler(values)
                return
            except Exception:
                # Not understood: nothing is committed, the batch is tried again.
                log.exception("a batch of %s failed; retrying", tp)
                metrics.BATCH_RETRIES.labels(tp.topic).inc()
                await asyncio.sleep(backoff(attempt))
                attempt += 1

    async def _commit_due(self) -> None:
        now = time.monotonic()
        if self._done and now - self._last_commit >= self._settings.processor_commit_interval_s:
            self._last_commit = now
            await self._commit()

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._done.items()
            if only is None or tp in only
        }
        if not offsets:
            return
        for tp in offsets:
            del self._done[tp]
        try:
            await self._member().commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # At-least-once: what was not committed is read again by the partition's owner.
            log.warning("committing offsets failed (they will be read again): %r", exc)

    async def _finish(self, partitions: list[TopicPartition], timeout_s: float) -> None:
        """Let the batches of these partitions end (cancelled after `timeout_s`)."""
        tasks = [self._running[tp] for tp in partitions if tp in self._running]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # --- rebalance (called by aiokafka between fetches) -------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # A batch in hand is given a moment to finish (its offsets are then committed); one
        # that waits longer (a lock, a retry) is cancelled, and the next owner repeats it.
        await self._finish(list(revoked), timeout_s=1.0)
        await self._commit(set(revoked))
        for tp in revoked:
            self._handlers.pop(tp, None)
            self._done.pop(tp, None)
            self._queued.pop(tp, None)  # read again by the partition's next owner

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._assigned.set()
