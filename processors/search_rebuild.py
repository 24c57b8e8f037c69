"""Rebuilds the search index from `parley.stored.v1` (`parley replay --search`).

Empties the index, then reads every partition from the beginning up to the end offsets seen
after emptying it, through the indexer the processors run. The live indexer may run meanwhile:
a record it indexed before the emptying is below those end offsets, so read again here, and a
record after them was produced after the emptying, so the live indexer writes it. Searches
during the rebuild see part of the history.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from processors.indexer import SearchIndexer
from schemas.settings import Settings
from storage.stores import open_stores
from topics.definitions import stored_topic
from topics.offsets import partitions_of


async def rebuild_search(
    settings: Settings, progress: Callable[[int, int], None] | None = None
) -> int:
    """Empty the search index and fill it from the stored topic; returns the events read."""
    topic = stored_topic(settings).name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.kafka_max_request_bytes,
    )
    stores = await open_stores(settings)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        consumer.assign(partitions)
        # Emptied before the end offsets are read: see the module's docstring.
        await stores.search.clear()
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        indexer = SearchIndexer(stores.search)
        done = 0
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        while remaining:
            batches = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=settings.processor_batch_max
            )
            for tp, records in batches.items():
                wanted = [r.value for r in records if r.offset < ends[tp]]
                await indexer.handle(wanted)
                done += len(wanted)
                if records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if progress is not None:
                progress(done, total)
        return done
    finally:
        await consumer.stop()
        await stores.close()
