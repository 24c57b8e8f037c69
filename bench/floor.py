"""The floor: a bare aiokafka produce -> consume round trip through the stack's broker, at the
same offered rates and with the same pacing as the latency scenarios, spread over as many
partitions as Parley's messages topic has. Parley's latency cannot be lower than this (every
message crosses the broker twice: send and inbox).

Two producers: the idempotent one Parley's gateways and processors use (acks=all), and a
transactional one (a transaction per batch, read back with `read_committed`), which is what a
processor would pay to fence a zombie and commit its offsets with its output."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import histograms
from bench.admin import create_topic, delete_topic, wait_for_leaders
from bench.context import Context
from bench.load import CDF_POINTS
from bench.pacing import Pacer
from bench.progress import bar as progress_bar
from bench.results import DepthProbe, DepthStep, FloorResults, FloorRun, Ratios

# About the size of a `message.send` event on the messages topic.
PADDING = b"x" * 280

FETCH_MAX_WAIT_MS = 500
"""PARLEY_KAFKA_FETCH_MAX_WAIT_MS's default. Kafka answers a waiting fetch as soon as data
arrives, so the wait adds no latency; it bounds how often an idle consumer asks again."""


class Floor:
    """Produce -> consume over a topic of its own. `transactional`: each batch of due records is
    one transaction (begin, send, commit), consumed with `isolation_level="read_committed"`."""

    def __init__(
        self,
        bootstrap: str,
        partitions: int,
        *,
        transactional: bool = False,
        txn_retry_ms: float | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.transactional = transactional
        self.txn_retry_ms = txn_retry_ms
        self.kind = "transactional" if transactional else "idempotent"
        self.topic = f"bench.floor.{uuid.uuid4().hex[:12]}"
        self._producer: Any = None
        self._consumer: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._t0: dict[int, int] = {}
        self._sink: list[int] = []
        self.received = 0
        self._target = 0
        self._done = asyncio.Event()

    async def start(self) -> None:
        await create_topic(self.bootstrap, self.topic, self.partitions)
        await wait_for_leaders(self.bootstrap, self.topic, self.partitions)
        txn: dict[str, Any] = {}
        if self.transactional:
            txn["transactional_id"] = f"parley-bench-floor-{uuid.uuid4().hex[:8]}"
            if self.txn_retry_ms is not None:
                set_txn_retry(self.txn_retry_ms)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"parley-bench-floor-{self.kind}",
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            **txn,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"parley-bench-floor-{self.kind}",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            isolation_level="read_committed" if self.transactional else "read_uncommitted",
        )
        await self._consumer.start()
        self._consumer.assign(self._topic_partitions())
        self._reader = asyncio.create_task(self._read())

    def _topic_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in range(self.partitions)]

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.monotonic_ns()
            for records in batches.values():
                for record in records:
                    seq = int.from_bytes(record.value[:8], "big")
                    t0 = self._t0.pop(seq, None)
                    if t0 is not None:
                        self._sink.append(now - t0)
                        self.received += 1
            if len(self._sink) >= self._target:
                self._done.set()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for client in (self._producer, self._consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        await delete_topic(self.bootstrap, self.topic)

    @property
    def label(self) -> str:
        return "floor (transactional)" if self.transactional else "floor"

    async def run(
        self, rate: float, duration_s: float, drain_s: float, seq_base: int
    ) -> tuple[FloorRun, histograms.Histogram]:
        """Produce `rate` records/s for `duration_s` (scheduled at absolute times) and measure
        produce -> consume from each record's intended send time."""
        count = max(int(rate * duration_s), 1)
        sink: list[int] = []
        self._sink = sink
        self._target = count
        self._done.clear()
        lag: list[int] = []
        pacer = Pacer(rate, 20_000_000)
        start = pacer.start
        sender = _Transactions(self) if self.transactional else _Sends(self)
        sent = 0
        with progress_bar(count, f"floor ({self.kind}) @{rate:g}/s", "msg") as bar:
            last_bar = 0
            while sent < count:
                intended = await pacer.wait(sent)
                seq = seq_base + sent
                self._t0[seq] = intended
                await sender.send(seq)
                lag.append(time.monotonic_ns() - intended)
                sent += 1
                if sent - last_bar >= max(count // 50, 1):
                    bar.update(sent - last_bar)
                    last_bar = sent
            bar.update(sent - last_bar)
            await sender.finish()
        end = time.monotonic_ns()
        errors = sender.errors
        deadline = time.monotonic() + drain_s
        self._target = sent - errors
        if len(sink) < self._target:
            self._done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), max(deadline - time.monotonic(), 0))
        missing = sent - errors - len(sink)
        for seq in range(seq_base, seq_base + sent):
            self._t0.pop(seq, None)
        latency = histograms.of_ns(sink)
        row = FloorRun(
            scenario=self.label,
            producer=self.kind,
            offered_per_s=rate,
            sent=sent,
            send_window_s=round((end - start) / 1e9, 3),
            send_failed=errors,
            missing=missing,
            send_lag_ms=histograms.summary(histograms.of_ns(lag)),
            latency_ms=histograms.summary(latency),
            cdf_ms=histograms.cdf(latency, CDF_POINTS),
        )
        sender.describe(row)
        return row, latency

    def _record(self, seq: int) -> tuple[bytes, int]:
        return seq.to_bytes(8, "big") + PADDING, seq % self.partitions


class _Sends:
    """The idempotent producer: each record is handed to the producer when due (it batches
    what piles up while a request is in flight, as Parley's publisher does)."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.errors = 0
        self._acks: list[asyncio.Future[Any]] = []

    async def send(self, seq: int) -> None:
        value, partition = self.floor._record(seq)
        try:
            ack = await self.floor._producer.send(self.floor.topic, value, partition=partition)
        except Exception:
            self.errors += 1
            self.floor._t0.pop(seq, None)
            return
        self._acks.append(ack)

    async def finish(self) -> None:
        results = await asyncio.gather(*self._acks, return_exceptions=True)
        self.errors += sum(1 for r in results if isinstance(r, BaseException))

    def describe(self, row: FloorRun) -> None:
        pass


class _Transactions:
    """The transactional producer: one task commits, in turn, a transaction holding every
    record that fell due while the previous one was being committed (a processor would
    likewise write each consumed batch's output in one transaction)."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.errors = 0
        self._due: list[int] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._sizes: list[int] = []
        self._commit_ns: list[int] = []
        self._task = asyncio.create_task(self._commit_loop())

    async def send(self, seq: int) -> None:
        self._due.append(seq)
        self._wake.set()

    async def _commit_loop(self) -> None:
        producer = self.floor._producer
        while True:
            if not self._due:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._due = self._due, []
            started = time.monotonic_ns()
            try:
                await producer.begin_transaction()
                for seq in batch:
                    value, partition = self.floor._record(seq)
                    await producer.send(self.floor.topic, value, partition=partition)
                await producer.commit_transaction()
            except Exception:
                self.errors += len(batch)
                for seq in batch:
                    self.floor._t0.pop(seq, None)
                with contextlib.suppress(Exception):
                    await producer.abort_transaction()
                continue
            self._commit_ns.append(time.monotonic_ns() - started)
            self._sizes.append(len(batch))

    async def finish(self) -> None:
        self._closing = True
        self._wake.set()
        await self._task

    def describe(self, row: FloorRun) -> None:
        sizes = self._sizes
        row.transactions = len(sizes)
        row.records_per_transaction_mean = round(sum(sizes) / len(sizes), 2) if sizes else None
        row.records_per_transaction_max = max(sizes, default=None)
        row.transaction_ms = histograms.summary(histograms.of_ns(self._commit_ns))


def set_txn_retry(ms: float) -> None:
    """aiokafka waits a fixed 20 ms before it retries adding a partition to a transaction that
    the broker still reports as busy with the previous one (CONCURRENT_TRANSACTIONS: the
    previous commit's markers are being written, KAFKA-5477). A producer that commits
    back-to-back pays it on nearly every transaction; this sets it (for this process)."""
    from aiokafka.producer import sender

    sender.BACKOFF_OVERRIDE = ms / 1000


async def depth_probe(
    bootstrap: str,
    max_records: int = 20_000,
    step: int = 5_000,
    writers: int = 4,
    fetch_timeout_s: float = 2.0,
) -> DepthProbe:
    """That a deep partition is still served promptly (the soak's busy channel holds 20,000
    messages): write `step` single-record batches at a time into one partition (acks=all,
    each writer awaiting its record before the next, as a quiet channel's sends arrive), then
    time a fetch of the newest and of the oldest record. Stops at the first fetch that gets
    nothing within `fetch_timeout_s`."""
    topic = f"bench.depth.{uuid.uuid4().hex[:12]}"
    await create_topic(bootstrap, topic)
    await wait_for_leaders(bootstrap, topic, 1)
    producers = [
        AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        for _ in range(writers)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    for producer in producers:
        await producer.start()
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])

    async def write(producer: AIOKafkaProducer, n: int) -> None:
        for _ in range(n):
            await producer.send_and_wait(topic, PADDING, partition=0)

    async def fetch_s(offset: int) -> float | None:
        consumer.seek(tp, offset)
        t0 = time.monotonic()
        batches = await consumer.getmany(tp, timeout_ms=int(fetch_timeout_s * 1000))
        got = sum(len(records) for records in batches.values())
        return round(time.monotonic() - t0, 4) if got else None

    out = DepthProbe(writers, fetch_timeout_s)
    try:
        written = 0
        while written < max_records:
            n = min(step, max_records - written)
            t0 = time.monotonic()
            shares = [n // writers + (1 if i < n % writers else 0) for i in range(writers)]
            await asyncio.gather(*(write(p, k) for p, k in zip(producers, shares, strict=True)))
            written += n
            produce_s = time.monotonic() - t0
            newest = await fetch_s(written - 1)
            oldest = await fetch_s(0)
            out.steps.append(
                DepthStep(
                    records=written,
                    produce_step_s=round(produce_s, 3),
                    single_record_produces_per_s=round(n / produce_s) if produce_s else None,
                    fetch_newest_s=newest,
                    fetch_oldest_s=oldest,
                )
            )
            if newest is None or oldest is None:
                out.fetch_failed_at_records = written
                break
    finally:
        for producer in producers:
            await producer.stop()
        await consumer.stop()
        await delete_topic(bootstrap, topic)
    return out


async def warm_up(floor: Floor) -> None:
    """Round trips on every partition first, so metadata, connections and (for transactions)
    the producer id and the coordinator are not measured."""
    await floor.run(100, 2.0, 10, seq_base=10**12)


async def run_floor(ctx: Context) -> None:
    """The idempotent floor at each latency rate, and right after it (on the same machine
    load) the transactional floor at that rate; then the depth probe."""
    cfg, bootstrap = ctx.cfg, ctx.stack.kafka_bootstrap
    out = ctx.results.floor = FloorResults()
    if not bootstrap:
        out.error = "no broker address (use --kafka-bootstrap with --url)"
        return
    out.bootstrap, out.partitions = bootstrap, cfg.floor_partitions
    out.fetch_max_wait_ms, out.txn_retry_ms = FETCH_MAX_WAIT_MS, cfg.floor_txn_retry_ms
    floors = [Floor(bootstrap, cfg.floor_partitions)]
    if cfg.floor_transactions:
        floors.append(
            Floor(
                bootstrap,
                cfg.floor_partitions,
                transactional=True,
                txn_retry_ms=cfg.floor_txn_retry_ms,
            )
        )
    try:
        for floor in floors:
            await floor.start()
            await warm_up(floor)
        for n, rate in enumerate(cfg.latency_rates):
            for floor in floors:
                row, latency = await floor.run(
                    rate, cfg.latency_duration_s, cfg.drain_s, seq_base=n * 10**9
                )
                key = "floor-txn" if floor.transactional else "floor"
                ctx.plotted[f"{key}@{rate:g}"] = latency
                (out.transactional_runs if floor.transactional else out.runs).append(row)
    finally:
        for floor in floors:
            await floor.stop()
    # The transactional floor as a multiple of the idempotent floor at the same rate.
    plain = {r.offered_per_s: r for r in out.runs}
    for row in out.transactional_runs:
        base = plain.get(row.offered_per_s)
        if base is not None:
            row.ratio_to_idempotent_floor = Ratios.of(row.latency_ms, base.latency_ms)
    if cfg.depth_probe:
        out.depth_probe = await depth_probe(bootstrap, max_records=2_000 if cfg.quick else 20_000)
