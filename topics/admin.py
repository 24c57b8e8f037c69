"""Creates Parley's topics on a broker; existing topics are left as they are."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.settings import Settings
from topics.definitions import all_topics

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topics(settings) if t.name not in existing]
        if not wanted:
            return []
        durability = {}
        if settings.min_insync_replicas is not None:
            if settings.min_insync_replicas > settings.replication_factor:
                raise ValueError("min_insync_replicas is more than the replication factor")
            durability["min.insync.replicas"] = str(settings.min_insync_replicas)
        response = await admin.create_topics(
            [
                NewTopic(
                    t.name,
                    t.partitions,
                    settings.replication_factor,
                    topic_configs={**t.config, **durability},
                )
                for t in wanted
            ]
        )
        created = []
        for name, code, message in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {message} ({code})")
        return created
    finally:
        await admin.close()
