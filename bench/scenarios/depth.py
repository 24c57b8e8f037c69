"""The depth probe: that a deep partition is still served promptly by the stack's broker (the
soak's busy channel holds 20,000 messages), checked on every run with the floors."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness.admin import create_topic, delete_topic, wait_for_leaders
from bench.harness.results import DepthProbe, DepthStep
from bench.scenarios.kafka_floor import FETCH_MAX_WAIT_MS, PADDING


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
