"""A topic's partitions, where they end, and how far a consumer group is behind."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, asked of the broker (empty if there is no such topic).

    A consumer without subscriptions keeps no topic in its metadata: its periodic refresh asks
    for none, so `partitions_for_topic` answers `None` soon after start. Hence a full fetch."""
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or [])]


async def group_lag(bootstrap: str, group_id: str, topic: str) -> int:
    """Records of `topic` not yet committed by consumer group `group_id`, over all partitions.

    Reads the group's committed offsets without joining it (no subscription, no commits)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        lag = 0
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            lag += max(end - (committed or 0), 0)
        return lag
    finally:
        await consumer.stop()
