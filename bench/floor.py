"""The floor: a bare aiokafka produce -> consume round trip through the stack's broker, at the
same offered rates and with the same pacing as the latency scenarios, spread over as many
partitions as Parley's messages topic has. Parley's latency cannot be lower than this (every
message crosses the broker twice: send and inbox)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.pacing import Pacer
from bench.progress import bar as progress_bar
from bench.stats import summarize_ns

# About the size of a `message.send` event on the messages topic.
PADDING = b"x" * 280


class Floor:
    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
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
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="parley-bench-floor",
            acks="all",
            enable_idempotence=False,
            linger_ms=0,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="parley-bench-floor",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=2,
        )
        await self._consumer.start()
        self._consumer.assign(self._topic_partitions())
        self._reader = asyncio.create_task(self._read())

    async def fresh_topic(self) -> None:
        """Move to a new empty topic (each rate starts from an empty partition)."""
        old = self.topic
        self.topic = f"bench.floor.{uuid.uuid4().hex[:12]}"
        await create_topic(self.bootstrap, self.topic, self.partitions)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._consumer.assign(self._topic_partitions())
        self._reader = asyncio.create_task(self._read())
        await delete_topic(self.bootstrap, old)

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

    async def run(
        self, rate: float, duration_s: float, drain_s: float, seq_base: int
    ) -> tuple[list[int], dict[str, Any]]:
        """Produce `rate` records/s for `duration_s` (scheduled at absolute times) and measure
        produce -> consume from each record's intended send time."""
        count = max(int(rate * duration_s), 1)
        sink: list[int] = []
        self._sink = sink
        self._target = count
        self._done.clear()
        errors = 0
        lag: list[int] = []
        pacer = Pacer(rate, 20_000_000)
        start = pacer.start
        sent = 0
        with progress_bar(count, f"floor @{rate:g}/s", "msg") as bar:
            last_bar = 0
            while sent < count:
                intended = await pacer.wait(sent)
                seq = seq_base + sent
                self._t0[seq] = intended
                try:
                    await self._producer.send(
                        self.topic,
                        seq.to_bytes(8, "big") + PADDING,
                        partition=seq % self.partitions,
                    )
                except Exception:
                    errors += 1
                    self._t0.pop(seq, None)
                lag.append(time.monotonic_ns() - intended)
                sent += 1
                if sent - last_bar >= max(count // 50, 1):
                    bar.update(sent - last_bar)
                    last_bar = sent
            bar.update(sent - last_bar)
        end = time.monotonic_ns()
        deadline = time.monotonic() + drain_s
        self._target = sent - errors
        if len(sink) < self._target:
            self._done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), max(deadline - time.monotonic(), 0))
        missing = sent - errors - len(sink)
        for seq in range(seq_base, seq_base + sent):
            self._t0.pop(seq, None)
        info = {
            "offered_per_s": rate,
            "sent": sent,
            "send_window_s": round((end - start) / 1e9, 3),
            "produce_errors": errors,
            "missing": missing,
            "send_lag_ms": summarize_ns(lag),
        }
        return sink, info


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="parley-bench")
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
        for name, code, message in response.topic_errors:
            if code != 0:
                raise RuntimeError(f"could not create topic {name}: {message} ({code})")
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="parley-bench")
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics([topic])
    with contextlib.suppress(Exception):
        await admin.close()


async def depth_probe(
    bootstrap: str, max_records: int = 8000, step: int = 1000, fetch_timeout_s: float = 2.0
) -> dict[str, Any]:
    """How the broker copes with a deep partition: write `step` single-record batches at a
    time (acks=all, one at a time, as a quiet chat channel would), then time a fetch of the
    newest record. Stops at the first fetch that gets nothing within `fetch_timeout_s`."""
    topic = f"bench.depth.{uuid.uuid4().hex[:12]}"
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=2,
    )
    await producer.start()
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    steps: list[dict[str, Any]] = []
    failed_at: int | None = None
    try:
        written = 0
        while written < max_records:
            t0 = time.monotonic()
            for _ in range(step):
                await producer.send_and_wait(topic, PADDING)
            written += step
            produce_s = time.monotonic() - t0
            consumer.seek(tp, written - 1)
            t1 = time.monotonic()
            batches = await consumer.getmany(tp, timeout_ms=int(fetch_timeout_s * 1000))
            got = sum(len(records) for records in batches.values())
            steps.append(
                {
                    "records": written,
                    "produce_step_s": round(produce_s, 3),
                    "fetch_newest_s": round(time.monotonic() - t1, 3) if got else None,
                }
            )
            if not got:
                failed_at = written
                break
    finally:
        await producer.stop()
        await consumer.stop()
        await delete_topic(bootstrap, topic)
    return {
        "steps": steps,
        "fetch_failed_at_records": failed_at,
        "fetch_timeout_s": fetch_timeout_s,
    }


async def warm_up(floor: Floor) -> None:
    """A few round trips first, so metadata and connections are not measured."""
    await floor.run(50, 0.4, 10, seq_base=10**12)
