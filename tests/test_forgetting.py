"""A delete forgets the text, in the log too (docs/operations.md, "Forgetting deleted texts"):
`parley.stored.v1`, the history's log, is compacted by row, a delete publishes blank copies of
the message and its edits, and compaction keeps only those; a replay from the log then gives
the tombstone, not the text."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from processors.pipeline import stored_partition
from processors.replay import replay
from schemas.settings import Settings
from tests.conftest import Api, eventually
from tests.stack import Stack
from tests.test_replay import empty_store, stored
from topics.definitions import messages_topic, stored_key, stored_topic


async def records(settings: Settings, partition: int) -> dict[bytes, list[bytes]]:
    """Every record of a partition of the stored topic, by key, from its beginning to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(stored_topic(settings).name, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        found: dict[bytes, list[bytes]] = {}
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.offset < end and record.key is not None:
                    found.setdefault(record.key, []).append(record.value or b"")
        return found
    finally:
        await consumer.stop()


async def compact_promptly(settings: Settings) -> None:
    """The stored topic's cleaner, made prompt for the test: segments roll and are compacted
    within about a second, instead of within `forget_deleted_within_ms` (a day)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    stored_topic(settings).name,
                    configs={
                        "cleanup.policy": "compact",
                        "max.compaction.lag.ms": "1000",
                        "min.cleanable.dirty.ratio": "0.01",
                        "max.message.bytes": str(4 * 1024 * 1024),
                    },
                )
            ]
        )
    finally:
        await admin.close()


async def test_a_deleted_text_leaves_the_stored_log_and_a_replay_gives_its_tombstone(
    api: Api, stack: Stack
) -> None:
    settings = stack.settings
    alice, bob = await api.new_device("fa"), await api.new_device("fb")
    channel = await api.direct(alice, bob.user_id)
    socket = await api.connect(alice)
    secret, edited = f"secret {uuid.uuid4().hex}", f"edited secret {uuid.uuid4().hex}"
    await socket.send_message(channel, "before")
    await socket.send_message(channel, secret)
    first, message = await socket.collect_messages(channel, 2)
    message_id = message["message_id"]
    await socket.accepted(await socket.edit(channel, message_id, edited))
    await socket.accepted(await socket.delete(channel, message_id))
    await socket.until(lambda f: f["type"] == "delete")

    partition = stored_partition(channel, settings.messages_partitions)
    key = stored_key(channel, int(message_id))
    # Before compaction the log holds the original and, after it, the blank copy (published with
    # the delete's inbox records: the delete frame may come first).
    logged: dict[bytes, list[bytes]] = {}

    async def blank_copy_logged() -> bool:
        nonlocal logged
        logged = await records(settings, partition)
        return len(logged.get(key, [])) >= 2

    await eventually(blank_copy_logged, 30, "the blank copy of the deleted message on the log")
    assert secret.encode() in logged[key][0]
    assert secret.encode() not in logged[key][-1]
    assert b'"deleted":true' in logged[key][-1]
    # The edit's own row carries its text, and its blank copy follows under its key; unless the
    # delete was stored in the edit's batch: then the edit was published blank at once.
    edit_keys = [k for k, values in logged.items() if any(edited.encode() in v for v in values)]
    assert len(edit_keys) <= 1
    assert all(edited.encode() not in logged[k][-1] for k in edit_keys)

    await compact_promptly(settings)

    async def forgotten() -> bool:
        # Segments roll on an append: one more message each time we look.
        await socket.send_message(channel, "filler")
        values = [v for vs in (await records(settings, partition)).values() for v in vs]
        return not any(secret.encode() in v or edited.encode() in v for v in values)

    await eventually(forgotten, 120, "compaction to remove the deleted texts from the log")
    after = await records(settings, partition)
    assert [b'"deleted":true' in v for v in after[key]] == [True]
    assert after[stored_key(channel, int(first["message_id"]))]  # the rest of the history stays

    # A rebuild from the compacted log gives the tombstone and no text, and the rest as stored.
    target = await empty_store(settings)
    await replay(target)
    live, rebuilt = await stored(settings, [channel]), await stored(target, [channel])
    assert rebuilt == live
    (tombstone,) = [m for m in rebuilt[channel] if m.message_id == int(message_id)]
    assert (tombstone.deleted, tombstone.text) == (True, "")
    assert all(secret not in m.text and edited not in m.text for m in rebuilt[channel])


async def test_the_messages_topic_is_a_queue_that_expires(stack: Stack) -> None:
    """Sends (and their texts) leave `parley.messages.v1` after its retention; the history is
    the stored topic, which has none."""
    settings = stack.settings
    assert messages_topic(settings).config["retention.ms"] == str(settings.messages_retention_ms)
    assert stored_topic(settings).config["cleanup.policy"] == "compact"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, messages_topic(settings).name),
                ConfigResource(ConfigResourceType.TOPIC, stored_topic(settings).name),
            ]
        )
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for response in described:
        for _, _, _, name, entries in response.resources:
            configs[name] = {entry[0]: entry[1] for entry in entries}
    assert configs[messages_topic(settings).name]["retention.ms"] == str(
        settings.messages_retention_ms
    )
    assert configs[stored_topic(settings).name]["cleanup.policy"] == "compact"
