"""Publishes client events to topics with acks=all.

The embedded broker cannot run the idempotent producer, so idempotence is off: a retried
produce may duplicate a record, which every consumer tolerates (sends carry their idempotency
key; deliveries are de-duplicated by message id).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from parley.settings import Settings
from schemas.events import ChannelMembersV1, DeviceRevokedV1, MessageSendV1
from topics.definitions import inbox_partition, inbox_topic, messages_topic


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._messages = messages_topic(settings).name
        self._inbox = inbox_topic(settings).name
        self._inbox_partitions = settings.inbox_partitions
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=False,
            linger_ms=0,
            max_request_size=settings.kafka_max_request_bytes,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_message(self, event: MessageSendV1) -> asyncio.Future[object]:
        """Queue a send; the returned future resolves when the broker acknowledged it.

        Queueing happens before this returns, so calls made in order land in order.
        """
        fut: asyncio.Future[object] = await self._producer.send(
            self._messages, event.encode(), key=event.channel_id.encode()
        )
        return fut

    async def members_changed(self, channel_id: str, member_ids: list[str]) -> None:
        event = ChannelMembersV1(channel_id=channel_id, member_ids=member_ids)
        await self._producer.send_and_wait(self._messages, event.encode(), key=channel_id.encode())

    async def device_revoked(self, user_id: str, device_id: str) -> None:
        event = DeviceRevokedV1(user_id=user_id, device_id=device_id)
        await self._producer.send_and_wait(
            self._inbox,
            event.encode(),
            key=user_id.encode(),
            partition=inbox_partition(user_id, self._inbox_partitions),
        )
