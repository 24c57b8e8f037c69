"""Where a partition ends.

The embedded broker under-reports a partition's end (ListOffsets "latest" answers the start of
the newest record batch plus one, not the offset after its last record), so the end is found by
reading: seek to the reported end and fetch until nothing more comes back. With a broker that
reports the end correctly this costs one empty fetch.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def end_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition. Leaves the consumer's assignment and
    positions changed: callers assign and seek afterwards."""
    reported: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, reported[tp])
    ends = dict(reported)
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        if not batches:
            return ends
        for tp, records in batches.items():
            ends[tp] = max(ends[tp], records[-1].offset + 1)
