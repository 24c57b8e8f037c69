"""Rebuilds the message store from `parley.messages.v1` (SPEC §4, Replay).

Reads every partition from the beginning up to the end offsets seen at start, through the same
pipeline the processors run, with fan-out switched off. Into an empty store it writes the same
rows with the same ids as the live pipeline did (processors/sequencer.py); over a store that has
them it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from processors.pipeline import MessagePipeline, Topics
from schemas.settings import Settings
from storage.stores import open_stores
from topics.definitions import dead_letter_topic, inbox_topic, messages_topic, stored_topic
from topics.offsets import partitions_of


async def replay(settings: Settings, progress: Callable[[int, int], None] | None = None) -> int:
    """Replay the messages topic into the configured store; returns the number of events read."""
    topic = messages_topic(settings).name
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
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        # An explicit position: a seek_to_beginning may lose to the fetcher's own reset.
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        pipeline = MessagePipeline(
            stores.messages,
            stores.channels,
            None,
            Topics(
                inbox_topic(settings).name,
                settings.inbox_partitions,
                dead_letter_topic(settings).name,
                stored_topic(settings).name,
            ),
        )
        done = 0
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        while remaining:
            batches = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=settings.processor_batch_max
            )
            for tp, records in batches.items():
                wanted = [r.value for r in records if r.offset < ends[tp]]
                await pipeline.handle(wanted)
                done += len(wanted)
                if records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if progress is not None:
                progress(done, total)
        return done
    finally:
        await consumer.stop()
        await stores.close()
