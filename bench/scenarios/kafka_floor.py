"""The Kafka floors: bare aiokafka round trips through the stack's broker (one hop, idempotent
or with a transaction per batch; two hops through a relay process, bare or writing each batch
to Postgres), paced as the latency runs are. A Parley message crosses the broker twice with a
processor between, so these bound its latency from below (bench/README.md, "floor")."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness import histograms
from bench.harness.admin import create_topic, delete_topic, wait_for_leaders
from bench.harness.results import FloorRun
from bench.harness.roundtrip import RoundTrip
from bench.scenarios.floor_client import NativeClient
from bench.scenarios.relay import CREATE_TABLE, RelayProcess, Spec

# About the size of a `message.send` event on the messages topic.
PADDING = b"x" * 280

FETCH_MAX_WAIT_MS = 500
"""PARLEY_KAFKA_FETCH_MAX_WAIT_MS's default. Kafka answers a waiting fetch as soon as data
arrives, so the wait adds no latency; it bounds how often an idle consumer asks again."""


class Floor(RoundTrip):
    """Produce -> consume over topics of its own. `transactional`: each batch of due records is
    one transaction (begin, send, commit), consumed with `isolation_level="read_committed"`.
    `hops=2`: a relay process carries the records from the first topic to a second, where they
    are consumed; with `dsn` (a Postgres server), it writes each batch to a database of its own
    there first. `native`: the records are sent, paced and read back by the native floor client
    (bench/scenarios/floor_client.py), not by aiokafka in the bench's process (not with
    `transactional`)."""

    def __init__(
        self,
        bootstrap: str,
        partitions: int,
        *,
        transactional: bool = False,
        txn_retry_ms: float | None = None,
        hops: int = 1,
        dsn: str | None = None,
        native: bool = False,
    ) -> None:
        if native and transactional:
            raise ValueError("the native floor client has no transactions")
        super().__init__()
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.transactional = transactional
        self.txn_retry_ms = txn_retry_ms
        self.hops = hops
        self.server_dsn = dsn
        self.database: str | None = None
        tag = uuid.uuid4().hex[:12]
        self.topic = f"bench.floor.{tag}"
        self.read_topic = f"bench.floor.{tag}.b" if hops == 2 else self.topic
        if transactional:
            self.kind, self.label = "transactional", "floor (transactional)"
        elif hops == 2:
            self.kind = "durable relay" if dsn else "relay"
            self.label = "durable two-hop floor" if dsn else "two-hop floor"
        self._producer: Any = None
        self._consumer: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._relay: RelayProcess | None = None
        self._sender: _Sends | _Transactions | None = None
        self._native = (
            NativeClient(
                bootstrap, self.topic, self.read_topic, partitions, FETCH_MAX_WAIT_MS, len(PADDING)
            )
            if native
            else None
        )

    async def start(self) -> None:
        topics = [self.topic] if self.hops == 1 else [self.topic, self.read_topic]
        for topic in topics:
            await create_topic(self.bootstrap, topic, self.partitions)
            await wait_for_leaders(self.bootstrap, topic, self.partitions)
        if self._native is not None:
            await self._native.start()
        else:
            await self._start_clients()
        if self.hops == 2:
            dsn = await self._create_database() if self.server_dsn else None
            self._relay = RelayProcess(
                Spec(
                    self.bootstrap,
                    self.topic,
                    self.read_topic,
                    self.partitions,
                    FETCH_MAX_WAIT_MS,
                    dsn,
                )
            )
            await self._relay.start()

    async def _start_clients(self) -> None:
        """The aiokafka producer and consumer, in the bench's process."""
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
        self._consumer.assign([TopicPartition(self.read_topic, p) for p in range(self.partitions)])
        self._reader = asyncio.create_task(self._read())

    async def _create_database(self) -> str:
        """A database of the durable relay's own on the stack's Postgres (dropped by `stop`),
        with the one table it writes."""
        import psycopg

        assert self.server_dsn is not None
        name = f"bench_relay_{uuid.uuid4().hex[:8]}"
        async with await psycopg.AsyncConnection.connect(self.server_dsn, autocommit=True) as c:
            await c.execute(f"CREATE DATABASE {name}".encode())
        self.database = name
        dsn = self.server_dsn.replace("/postgres?", f"/{name}?")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
            await c.execute(CREATE_TABLE.encode())
        return dsn

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.monotonic_ns()
            for records in batches.values():
                for record in records:
                    self.arrived(int.from_bytes(record.value[:8], "big"), now)

    async def stop(self) -> None:
        for process in (self._relay, self._native):
            if process is not None:
                with contextlib.suppress(Exception):
                    await process.stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for client in (self._producer, self._consumer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        for topic in {self.topic, self.read_topic}:
            await delete_topic(self.bootstrap, topic)
        if self.database is not None and self.server_dsn is not None:
            import psycopg

            with contextlib.suppress(psycopg.Error, OSError):
                async with await psycopg.AsyncConnection.connect(
                    self.server_dsn, autocommit=True
                ) as c:
                    await c.execute(f"DROP DATABASE IF EXISTS {self.database}".encode())

    async def run(
        self, rate: float, duration_s: float, drain_s: float, seq_base: int
    ) -> tuple[FloorRun, histograms.Histogram]:
        if self._native is None:
            return await super().run(rate, duration_s, drain_s, seq_base)
        if self._relay is not None:
            await self._relay.take()  # what it did before this run is not this run's
        answer = await self._native.run(rate, duration_s, drain_s, seq_base)
        latency = histograms.of(answer.latency_us)
        lag = histograms.summary(histograms.of(answer.send_lag_us))
        row = self.row(
            rate, answer.sent, answer.send_window_s, answer.failed, answer.missing, lag, latency
        )
        await self._describe(row)
        return row, latency

    async def _begin(self) -> None:
        self._sender = _Transactions(self) if self.transactional else _Sends(self)
        if self._relay is not None:
            await self._relay.take()  # what it did before this run is not this run's

    async def _send(self, seq: int) -> None:
        assert self._sender is not None
        await self._sender.send(seq)

    async def _end(self) -> None:
        assert self._sender is not None
        await self._sender.finish()

    async def _describe(self, row: FloorRun) -> None:
        if isinstance(self._sender, _Transactions):
            self._sender.describe(row)
        if self._relay is not None:
            row.relay = await self._relay.take()

    def _record(self, seq: int) -> tuple[bytes, int]:
        return seq.to_bytes(8, "big") + PADDING, seq % self.partitions


class _Sends:
    """The idempotent producer: each record is handed to the producer when due (it batches
    what piles up while a request is in flight, as Parley's publisher does)."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self._acks: list[asyncio.Future[Any]] = []

    async def send(self, seq: int) -> None:
        value, partition = self.floor._record(seq)
        try:
            ack = await self.floor._producer.send(self.floor.topic, value, partition=partition)
        except Exception:
            self.floor.failed(seq)
            return
        self._acks.append(ack)

    async def finish(self) -> None:
        results = await asyncio.gather(*self._acks, return_exceptions=True)
        # Not awaited any more: `run` counts them out of the drain's target.
        self.floor.errors += sum(1 for r in results if isinstance(r, BaseException))


class _Transactions:
    """The transactional producer: one task commits, in turn, a transaction holding every
    record that fell due while the previous one was being committed (a processor would
    likewise write each consumed batch's output in one transaction)."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
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
                for seq in batch:
                    self.floor.failed(seq)
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
