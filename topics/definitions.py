"""Topic definitions and the inbox partitioner."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.partitioner import murmur2

from schemas.settings import Settings

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
# The largest record a topic takes: a 100,000-character message (up to 400 KB of UTF-8) and its
# envelope fit many times over; set per topic so that a broker's default does not decide it.
MAX_MESSAGE_BYTES = str(4 * 1024 * 1024)


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
        # The processors' queue: a week by default, for an outage to be caught up. The history
        # is `parley.stored.v1` (the store is rebuilt from it), so a deleted text leaves this
        # log when its segment expires: daily segments, `messages_retention_ms` after the last
        # record of the segment.
        config={
            "retention.ms": str(settings.messages_retention_ms),
            "retention.bytes": "-1",
            "segment.ms": str(DAY_MS),
            "cleanup.policy": "delete",
            "max.message.bytes": MAX_MESSAGE_BYTES,
        },
    )


def inbox_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.inbox.v1",
        settings.inbox_partitions,
        key="channel_id",
        # A day: gateways read it live and offline devices sync from the store, so only the
        # notifier of a processor down for longer could miss records (pushes that old are
        # never sent: push_max_age_s). Hourly segments, so that old ones are deleted.
        config={
            "retention.ms": str(DAY_MS),
            "segment.ms": str(HOUR_MS),
            "cleanup.policy": "delete",
            "max.message.bytes": MAX_MESSAGE_BYTES,
        },
    )


def stored_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.stored.v1",
        settings.messages_partitions,
        key="channel_id/message_id",
        # The history, forever, as a compacted log: each stored row is a record of its own key
        # (`stored_key`), in its channel's partition (`key_partition(channel_id)`), so in
        # channel order. A delete publishes blank copies of the message and its edits under
        # their keys, and compaction keeps only those, within `forget_deleted_within_ms` (for
        # a compacted topic that also bounds how long a segment stays open). The message store
        # (`parley replay`) and the search index (`parley replay --search`) are rebuilt from it.
        config={
            "cleanup.policy": "compact",
            "max.compaction.lag.ms": str(settings.forget_deleted_within_ms),
            "max.message.bytes": MAX_MESSAGE_BYTES,
        },
    )


def stored_key(channel_id: str, message_id: int) -> bytes:
    """The key of a stored row on `parley.stored.v1`: one per row, so compaction replaces a row
    only by a later copy of itself (a blank one, after a delete)."""
    return f"{channel_id}/{message_id}".encode()


def dead_letter_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.messages.dlq.v1",
        1,
        key="channel_id",
        config={
            "retention.ms": str(30 * DAY_MS),
            "cleanup.policy": "delete",
            "max.message.bytes": MAX_MESSAGE_BYTES,
        },
    )


def presence_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.presence.v1",
        settings.presence_partitions,
        key="user_id",
        # An hour: soft state, repaired by the next heartbeat (every 15 s).
        config={
            "retention.ms": str(HOUR_MS),
            "segment.ms": str(HOUR_MS // 4),
            "cleanup.policy": "delete",
        },
    )


def presence_changes_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.presence-changes.v1",
        settings.presence_partitions,
        key="user_id",
        # The latest per key; a gateway reads from the end, so older versions may go in an hour.
        config={"cleanup.policy": "compact", "segment.ms": str(HOUR_MS)},
    )


def signals_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.signals.v1",
        settings.messages_partitions,
        key="channel_id",
        # Ten minutes: read-marker moves (already stored) and typing (never stored) are only
        # relayed to live sockets; nothing is ever rebuilt from this topic.
        config={
            "retention.ms": str(10 * 60 * 1000),
            "segment.ms": str(10 * 60 * 1000),
            "cleanup.policy": "delete",
        },
    )


def gateways_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.gateways.v1",
        1,
        key="gateway_id",
        config={"cleanup.policy": "compact", "segment.ms": str(HOUR_MS)},
    )


def audit_topic(settings: Settings) -> Topic:
    return Topic(
        "parley.audit.v1",
        1,
        key="target",
        # The operators' actions (`admin.action`), for the record: a year, nothing rebuilt
        # from it; read with `parley tap` or an operator's own consumer.
        config={
            "retention.ms": str(365 * DAY_MS),
            "cleanup.policy": "delete",
        },
    )


def all_topics(settings: Settings) -> list[Topic]:
    return [
        messages_topic(settings),
        inbox_topic(settings),
        stored_topic(settings),
        dead_letter_topic(settings),
        presence_topic(settings),
        presence_changes_topic(settings),
        gateways_topic(settings),
        signals_topic(settings),
        audit_topic(settings),
    ]


def key_partition(key: str, partitions: int) -> int:
    """The partition of a key under Kafka's default (murmur2) partitioner."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def inbox_partition(user_id: str, partitions: int) -> int:
    """The inbox partition that holds a user's deliveries."""
    return key_partition(user_id, partitions)
