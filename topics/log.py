"""Reads a whole topic once, from each partition's beginning to the end it has when the read
starts: how ops rebuild a store (`parley replay`) or the search index from the log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer

from schemas.settings import Settings
from topics.offsets import partitions_of

Handle = Callable[[Sequence[bytes]], Awaitable[object]]
Progress = Callable[[int, int], None]


async def read_log(
    settings: Settings,
    topic: str,
    handle: Handle,
    progress: Progress | None = None,
    before_ends: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Hand every record of `topic` to `handle`, a batch at a time in partition order, up to
    the end offsets read at the start (after `before_ends`, if given); returns how many."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.kafka_max_request_bytes,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        consumer.assign(partitions)
        if before_ends is not None:
            await before_ends()
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        # An explicit position: a seek_to_beginning may lose to the fetcher's own reset.
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        # Offsets, not records: a compacted topic has gaps (so fewer records than this).
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        done = 0
        positions = dict(starts)
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        while remaining:
            batches = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=settings.processor_batch_max
            )
            for tp, records in batches.items():
                wanted = [r.value for r in records if r.offset < ends[tp]]
                await handle(wanted)
                done += len(wanted)
            # Positions, not the last records: compaction may have removed the records just
            # before the end.
            for tp in partitions:
                positions[tp] = min(await consumer.position(tp), ends[tp])
                if positions[tp] >= ends[tp]:
                    remaining.discard(tp)
            if progress is not None:
                progress(sum(positions[tp] - starts[tp] for tp in partitions), total)
        return done
    finally:
        await consumer.stop()
