"""Topics the bench makes for itself (the floor, the depth probe), and what it reads of
Parley's own topics, through Kafka's admin API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="parley-bench")
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    async with _admin(bootstrap) as admin:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
    for name, code, message in response.topic_errors:
        if code != 0:
            raise RuntimeError(f"could not create topic {name}: {message} ({code})")


async def wait_for_leaders(
    bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0
) -> None:
    """Until every partition of a new topic has a leader (a produce or fetch before that
    waits for metadata, which would be charged to the first records)."""
    async with _admin(bootstrap) as admin:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            described = await admin.describe_topics([topic])
            led = [
                p
                for t in described
                if t.get("topic") == topic and not t.get("error_code")
                for p in t.get("partitions", [])
                if p.get("leader", -1) >= 0
            ]
            if len(led) >= partitions:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic}: no leader for every partition in {timeout_s:g} s")


async def delete_topic(bootstrap: str, topic: str) -> None:
    with contextlib.suppress(Exception):
        async with _admin(bootstrap) as admin:
            await admin.delete_topics([topic])


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions `topic` has (0 if it does not exist). A consumer's own metadata
    holds only the topics it subscribed to or was assigned, so the bench asks the admin API."""
    async with _admin(bootstrap) as admin:
        described = await admin.describe_topics([topic])
    return sum(len(t.get("partitions", [])) for t in described if t.get("topic") == topic)
