"""Topic definitions and the inbox partitioner."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.partitioner import murmur2

from parley.settings import Settings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    config: dict[str, str] = field(default_factory=dict)


def messages_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.messages.v1",
        settings.messages_partitions,
        key="channel_id",
        config={"retention.ms": "-1", "cleanup.policy": "delete"},
    )


def inbox_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.inbox.v1",
        settings.inbox_partitions,
        key="channel_id",
        config={"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete"},
    )


def dead_letter_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.messages.dlq.v1",
        1,
        key="channel_id",
        config={"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
    )


def presence_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.presence.v1",
        settings.presence_partitions,
        key="user_id",
        config={"retention.ms": str(DAY_MS), "cleanup.policy": "delete"},
    )


def presence_changes_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.presence-changes.v1",
        settings.presence_partitions,
        key="user_id",
        config={"cleanup.policy": "compact"},
    )


def gateways_topic(settings: Settings) -> Topic:
    return Topic("parley.gateways.v1", 1, key="gateway_id", config={"cleanup.policy": "compact"})


def all_topics(settings: Settings) -> list[Topic]:
    return [
        messages_topic(settings),
        inbox_topic(settings),
        dead_letter_topic(settings),
        presence_topic(settings),
        presence_changes_topic(settings),
        gateways_topic(settings),
    ]


def key_partition(key: str, partitions: int) -> int:
    """The partition of a key under Kafka's default (murmur2) partitioner."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def inbox_partition(user_id: str, partitions: int) -> int:
    """The inbox partition that holds a user's deliveries."""
    return key_partition(user_id, partitions)
