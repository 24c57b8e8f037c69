"""The relay of the two-hop floors: the least a processor can do between two topics.

It runs as a process of its own, as Parley's processor does, with its own event loop: it
consumes topic A in `getmany` batches (every partition assigned, no group), and re-produces each
record to topic B on the same partition (aiokafka, acks=all, idempotent, as Parley's producers),
awaiting the batch's acks before it takes the next batch, as an at-least-once processor must
before it may commit. The *durable* relay first writes each batch to Postgres in ONE statement
(an `INSERT … SELECT FROM unnest(…)`, autocommit: one round trip and one commit), so that the
floor includes what storing a message costs at the least. What Parley adds above these floors is
Parley's own work.

The bench starts it with `python -m bench.scenarios.relay '<json spec>'`. It prints `ready` once its
clients are started; each `stats` line on its stdin is answered with one JSON line of what it
did since the previous one (batches, records, time per batch in the database and in the
produce); it exits when its stdin closes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from bench.harness import histograms
from bench.harness.child import READY, Child
from bench.harness.results import Relayed

TABLE = "relayed"
CREATE_TABLE = (
    f"CREATE TABLE {TABLE} (part int NOT NULL, off bigint NOT NULL, value bytea NOT NULL,"
    " PRIMARY KEY (part, off))"
)
# One statement per batch; the primary key makes a redelivered batch harmless, as Parley's
# idempotency keys do.
INSERT_BATCH = (
    f"INSERT INTO {TABLE} (part, off, value)"
    " SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bytea[]) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class Spec:
    bootstrap: str
    source: str
    sink: str
    partitions: int
    fetch_max_wait_ms: int
    dsn: str | None = None
    """The durable relay's database; None for the bare relay."""


@dataclass
class _Tally:
    sizes: list[int] = field(default_factory=list)
    write_ns: list[int] = field(default_factory=list)
    produce_ns: list[int] = field(default_factory=list)

    def take(self) -> Relayed:
        sizes = self.sizes
        out = Relayed(
            batches=len(sizes),
            records=sum(sizes),
            records_per_batch_mean=round(sum(sizes) / len(sizes), 2) if sizes else None,
            records_per_batch_max=max(sizes, default=None),
            write_ms=histograms.summary(histograms.of_ns(self.write_ns)) if self.write_ns else None,
            produce_ms=histograms.summary(histograms.of_ns(self.produce_ns)),
        )
        self.sizes, self.write_ns, self.produce_ns = [], [], []
        return out


async def _relay(spec: Spec, tally: _Tally, ready: asyncio.Event) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(
        bootstrap_servers=spec.bootstrap,
        client_id="parley-bench-relay",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=spec.bootstrap,
        client_id="parley-bench-relay",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=spec.fetch_max_wait_ms,
    )
    conn: Any = None
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([TopicPartition(spec.source, p) for p in range(spec.partitions)])
        if spec.dsn is not None:
            import psycopg

            conn = await psycopg.AsyncConnection.connect(spec.dsn, autocommit=True)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            t0 = time.monotonic_ns()
            if conn is not None:
                await conn.execute(
                    INSERT_BATCH,
                    (
                        [r.partition for r in records],
                        [r.offset for r in records],
                        [r.value for r in records],
                    ),
                )
            t1 = time.monotonic_ns()
            acks = [
                await producer.send(spec.sink, r.value, key=r.key, partition=r.partition)
                for r in records
            ]
            await asyncio.gather(*acks)
            t2 = time.monotonic_ns()
            tally.sizes.append(len(records))
            if conn is not None:
                tally.write_ns.append(t1 - t0)
            tally.produce_ns.append(t2 - t1)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
        await consumer.stop()
        await producer.stop()


async def _serve(spec: Spec) -> None:
    """Relay until stdin closes; answer each `stats` line with the tally since the last."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tally, ready = _Tally(), asyncio.Event()
    task = asyncio.create_task(_relay(spec, tally, ready))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        await task  # raises what stopped it
    _say(READY)
    try:
        while line := await reader.readline():
            if task.done():
                await task
            if line.strip() == b"stats":
                _say(orjson.dumps(asdict(tally.take())))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _say(line: bytes) -> None:
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.buffer.flush()


class RelayProcess:
    """The bench's handle on a relay process."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._child = Child(
            "the relay",
            sys.executable,
            "-m",
            "bench.scenarios.relay",
            orjson.dumps(asdict(spec)).decode(),
        )

    async def start(self) -> None:
        await self._child.start()

    async def take(self) -> Relayed:
        """What the relay did since the last call."""
        data = orjson.loads(await self._child.ask(b"stats", 30.0))
        for key in ("write_ms", "produce_ms"):
            if data[key] is not None:
                data[key] = histograms.Summary(**data[key])
        return Relayed(**data)

    async def stop(self) -> None:
        await self._child.stop()


def main() -> None:
    import uvloop

    spec = Spec(**orjson.loads(sys.argv[1]))
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(spec))


if __name__ == "__main__":
    main()
