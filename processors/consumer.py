"""The processor's hot topics, read in batches on the worker's own event loop.

One aiokafka consumer per process reads every hot topic (`parley.messages.v1`,
`parley.stored.v1`, `parley.inbox.v1` for pushes): one fetch session with the broker however
many topics, and no hand-off to a consumer thread. `getmany` returns whatever has arrived, so a
batch is never held back by a timer: idle, the consumer sleeps in the broker's long poll.

Invariants (docs/architecture.md):
- Per key (a channel), one batch at a time, in offset order. A partition has two lanes, each
  running one batch at a time: records of a route's `heavy_bytes` or more (a huge text) go to
  the heavy lane, so the other channels of the partition never wait behind them; every record
  of a key goes to the lane that still holds an earlier record of that key, so a key's records
  are never reordered. What arrives while a lane's batch runs waits for it (and the partition
  is paused once `processor_batch_max` records or `kafka_max_request_bytes` wait), so a
  partition whose batch waits (a lock, a retry) holds up only itself.
- A batch holds at most `processor_batch_max` records and `processor_batch_bytes` bytes (and
  at least one record): one huge text never makes a small one wait for a whole batch of them.
- At-least-once: an offset is committed only once every record before it was handled (in
  whichever lane). A crash, a revoked partition or a handler that never returns repeats the
  batch; it never skips it.
- One error policy: a handler retries what it can itself (the pipeline parks what can never be
  stored on the dead-letter topic); anything it raises is retried here, with capped, jittered
  backoff, and the partition waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from processors import metrics
from processors.backoff import backoff
from schemas.settings import Settings
from topics.tracing import Headers

log = logging.getLogger("parley.consumer")

# A batch's values, and each record's headers (a trace context, topics/tracing.py).
BatchHandler = Callable[[list[bytes], list[Headers]], Awaitable[None]]

# What a gathering consumer's fetch waits for (or its `gather_s`).
GATHER_BYTES = 1024 * 1024
# How often the consumer lag gauge is brought up to date.
LAG_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Route:
    """A topic and what handles its batches."""

    topic: str
    # The handler of one partition, made when the partition first has records (a partition's
    # state, such as the pipeline's sequencer, lives in it and is dropped when it is revoked).
    # Its two lanes may call it at once, always with records of different keys.
    open: Callable[[int], BatchHandler]
    # Records of this many bytes or more go to the partition's heavy lane; None: one lane.
    heavy_bytes: int | None = None


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
        self._headers: list[Headers] = []
        self._call: asyncio.Future[None] | None = None

    async def __call__(self, batch: list[bytes], headers: list[Headers]) -> None:
        self._pending += batch
        self._headers += headers
        if self._call is None:
            self._call = asyncio.ensure_future(self._after_window())
        # Shielded: a partition revoked while waiting must not cancel the others' call.
        await asyncio.shield(self._call)

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window_s)
        # What arrives from now on joins the next call.
        batch, headers = self._pending, self._headers
        self._pending, self._headers, self._call = [], [], None
        await self._handle(batch, headers)


@dataclass(frozen=True)
class _Record:
    key: bytes | None
    value: bytes
    offset: int
    headers: Headers


def _record(fetched: ConsumerRecord[bytes, bytes]) -> _Record:
    """A fetched record as the lanes keep it; a value-less record (none is produced to these
    topics) is an empty value, which its handler refuses like any unreadable one."""
    return _Record(fetched.key, fetched.value or b"", fetched.offset, fetched.headers)


@dataclass
class _Lane:
    """Records of a partition handled one batch at a time, in offset order."""

    queued: deque[_Record] = field(default_factory=deque)
    in_hand: list[_Record] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def first_pending(self) -> int | None:
        """The offset of the lane's oldest record not yet handled."""
        if self.in_hand:
            return self.in_hand[0].offset
        return self.queued[0].offset if self.queued else None


class _Partition:
    """A partition's lanes, and which lane holds each key's records not yet handled."""

    def __init__(self, handler: BatchHandler) -> None:
        self.handler = handler
        self.light, self.heavy = _Lane(), _Lane()
        self.keys: dict[bytes | None, tuple[_Lane, int]] = {}  # lane and records held
        self.next_offset = 0  # after the last record taken

    @property
    def lanes(self) -> tuple[_Lane, _Lane]:
        return self.light, self.heavy

    def take(self, record: _Record, heavy: bool) -> None:
        """Queue a record in the lane that holds its key's earlier records, if one does."""
        lane, held = self.keys.get(record.key, (self.heavy if heavy else self.light, 0))
        self.keys[record.key] = (lane, held + 1)
        lane.queued.append(record)
        self.next_offset = record.offset + 1

    def handled(self, records: list[_Record]) -> None:
        for record in records:
            lane, held = self.keys[record.key]
            if held == 1:
                del self.keys[record.key]
            else:
                self.keys[record.key] = (lane, held - 1)

    def committable(self) -> int:
        """The offset to commit: every record before it was handled."""
        pending = [o for lane in self.lanes if (o := lane.first_pending()) is not None]
        return min(pending, default=self.next_offset)

    def waiting(self) -> tuple[int, int]:
        """Records and bytes queued behind the batches in hand."""
        queued = [r for lane in self.lanes for r in lane.queued]
        return len(queued), sum(len(r.value) for r in queued)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [lane.task for lane in self.lanes if lane.task is not None]


class PartitionedConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads the routes' topics as one consumer group member and runs each partition's batches
    in order, partitions (and a partition's two lanes) side by side."""

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
        self._partitions: dict[TopicPartition, _Partition] = {}
        # Processed but not yet committed: the offset to commit per partition.
        self._done: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._last_lag = 0.0
        self._assigned = asyncio.Event()

    def _client(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=self._group_id,
            client_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=self._settings.kafka_metadata_max_age_ms,
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
            # A fetch or metadata request to a broker that hangs (paused, not dead) gives up
            # after this and is asked again of the partitions' new leaders; a JoinGroup, which
            # the coordinator may hold for up to a session while the others rejoin, fits in it.
            request_timeout_ms=int(self._settings.processor_session_timeout_s * 1000)
            + self._fetch_wait_ms
            + self._settings.kafka_request_timeout_ms,
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

    def owned(self, topic: str) -> list[int]:
        """The partitions of `topic` this member owns now."""
        if self._consumer is None:
            return []
        return sorted(tp.partition for tp in self._consumer.assignment() if tp.topic == topic)

    async def run(self) -> None:
        """Consume until cancelled; then finish the batches in hand, commit and leave."""
        consumer = self._consumer = self._client()
        await consumer.start()
        consumer.subscribe(list(self._routes), listener=self)
        for topic in self._routes:  # every topic's series from the start
            metrics.CONSUMER_LAG.labels(topic).set(0)
            metrics.BATCH_RETRIES.labels(topic)
        try:
            while True:
                fetched = await consumer.getmany(
                    timeout_ms=self._fetch_wait_ms,
                    max_records=self._settings.processor_batch_max,
                )
                for tp, records in fetched.items():
                    self._take(tp, [_record(r) for r in records])
                await self._commit_due()
                self._measure_lag()
        finally:
            with contextlib.suppress(Exception):
                await self._finish(list(self._partitions), timeout_s=10.0)
                await self._commit()
            await consumer.stop()

    def _take(self, tp: TopicPartition, records: list[_Record]) -> None:
        """Queue records of a partition in their lanes; start each lane's runner unless one is
        at work."""
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = _Partition(self._routes[tp.topic].open(tp.partition))
        heavy_bytes = self._routes[tp.topic].heavy_bytes
        for record in records:
            heavy = heavy_bytes is not None and len(record.value) >= heavy_bytes
            partition.take(record, heavy)
        for lane in partition.lanes:
            if lane.queued and lane.task is None:
                lane.task = asyncio.create_task(self._run(tp, partition, lane))
        # The batches in hand come first. Fetching goes on meanwhile (a paused partition would
        # wait for the broker's next fetch, up to a whole fetch wait, once resumed); paused
        # only when a batch's worth of records or bytes waits, so memory stays bounded.
        if self._full(partition):
            self._member().pause(tp)

    def _full(self, partition: _Partition) -> bool:
        records, size = partition.waiting()
        return (
            records >= self._settings.processor_batch_max
            or size >= self._settings.kafka_max_request_bytes
        )

    async def _run(self, tp: TopicPartition, partition: _Partition, lane: _Lane) -> None:
        """Handle the lane's queued records, a batch at a time, until none is left."""
        try:
            while lane.queued:
                lane.in_hand = self._next_batch(lane.queued)
                await self._handle(tp, partition.handler, lane.in_hand)
                partition.handled(lane.in_hand)
                lane.in_hand = []
                self._done[tp] = partition.committable()
                if tp in self._member().paused() and not self._full(partition):
                    self._member().resume(tp)
        finally:
            if lane.task is asyncio.current_task():
                lane.task = None

    def _next_batch(self, queued: deque[_Record]) -> list[_Record]:
        """The oldest queued records, up to a batch's count and bytes (at least one)."""
        batch = [queued.popleft()]
        size = len(batch[0].value)
        while (
            queued
            and len(batch) < self._settings.processor_batch_max
            and size + len(queued[0].value) <= self._settings.processor_batch_bytes
        ):
            record = queued.popleft()
            batch.append(record)
            size += len(record.value)
        return batch

    async def _handle(
        self, tp: TopicPartition, handler: BatchHandler, records: list[_Record]
    ) -> None:
        values, headers = [r.value for r in records], [r.headers for r in records]
        attempt = 0
        while True:
            try:
                await handler(values, headers)
                return
            except Exception:
                # Not understood: nothing is committed, the batch is tried again.
                log.exception("a batch of %s failed; retrying", tp)
                metrics.BATCH_RETRIES.labels(tp.topic).inc()
                await asyncio.sleep(backoff(attempt))
                attempt += 1

    def _measure_lag(self) -> None:
        """The lag gauge, per topic, over the partitions this member owns and has fetched."""
        now = time.monotonic()
        if now - self._last_lag < LAG_INTERVAL_S:
            return
        self._last_lag = now
        consumer = self._member()
        lag = dict.fromkeys(self._routes, 0)
        owned = consumer.assignment()
        for tp, partition in self._partitions.items():
            end = consumer.highwater(tp) if tp in owned else None
            if end is not None:
                lag[tp.topic] += max(end - partition.committable(), 0)
        for topic, records in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(records)

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
        tasks = [
            task
            for tp in partitions
            if tp in self._partitions
            for task in self._partitions[tp].tasks()
        ]
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
            # What was queued is read again by the partition's next owner.
            self._partitions.pop(tp, None)
            self._done.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._assigned.set()
