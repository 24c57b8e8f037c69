"""Taps a topic for analytics: every event as one JSON line, live or from the beginning."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.settings import Settings
from topics.offsets import partitions_of


async def tap(
    settings: Settings,
    topic: str,
    emit: Callable[[bytes], None],
    from_beginning: bool = False,
    limit: int | None = None,
    follow: bool = True,
) -> int:
    """Emit the topic's events (JSON, with partition and offset added); returns how many.

    With `follow` off, stops at the end the topic had when the tap started.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=max(settings.kafka_fetch_max_wait_ms, 10),
        max_partition_fetch_bytes=settings.kafka_max_request_bytes,
    )
    await consumer.start()
    count = 0
    try:
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            raise ValueError(f"no topic named {topic}")
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        # Explicit positions: a seek_to_beginning may lose to the fetcher's own reset.
        starts = await consumer.beginning_offsets(partitions) if from_beginning else ends
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        while limit is None or count < limit:
            positions = [await consumer.position(tp) for tp in partitions]
            if not follow and all(
                pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)
            ):
                return count
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        event = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        event = {"unreadable": record.value.decode(errors="replace")}
                    event["_partition"], event["_offset"] = record.partition, record.offset
                    emit(orjson.dumps(event))
                    count += 1
                    if limit is not None and count >= limit:
                        return count
        return count
    finally:
        await consumer.stop()
