"""Publishes client events to topics: idempotent producers, acks=all.

A send retried by its client may still be published twice; every consumer tolerates that
(sends carry their idempotency key; deliveries are de-duplicated by message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from schemas.events import (
    ChannelMembersV1,
    DeviceRevokedV1,
    InboxMembershipV1,
    MessageChangeV1,
    MessageSendV1,
    PresenceAccessChangedV1,
    PresenceEventV1,
    ReadMovedV1,
    TypingV1,
)
from schemas.ids import now_ms
from schemas.settings import Settings
from topics.definitions import (
    inbox_partition,
    inbox_topic,
    key_partition,
    messages_topic,
    presence_changes_topic,
    presence_topic,
    signals_topic,
)

PresenceKind = Literal["connect", "heartbeat", "disconnect", "logout"]

log = logging.getLogger("parley.publisher")

REVOKE_RETRY_S = 30.0


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._messages = messages_topic(settings).name
        self._inbox = inbox_topic(settings).name
        self._inbox_partitions = settings.inbox_partitions
        self._signals = signals_topic(settings).name
        self._presence = presence_topic(settings).name
        self._presence_changes = presence_changes_topic(settings).name
        self._presence_partitions = settings.presence_partitions
        self._presence_pending: list[tuple[PresenceKind, str, str, str, int]] = []
        self._presence_flusher: asyncio.Task[None] | None = None
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            max_request_size=settings.kafka_max_request_bytes,
            request_timeout_ms=15_000,
        )
        # Presence events are many, small and in no hurry: their own producer lingers so that
        # thousands of sockets' heartbeats go out as a few batches, not one request each.
        self._presence_producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.presence_linger_ms,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        await self._producer.start()
        await self._presence_producer.start()

    async def stop(self) -> None:
        if self._presence_flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._presence_flusher), 5)
        await self._presence_producer.stop()
        await self._producer.stop()

    async def send_message(self, event: MessageSendV1 | MessageChangeV1) -> asyncio.Future[object]:
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

    async def memberships_changed(self, channel_id: str | None, user_ids: list[str]) -> None:
        """Tell the gateways holding sockets of `user_ids` that their memberships of
        `channel_id` (of every channel, if None) changed: one `inbox.membership` record per
        inbox partition, each listing its users. Call it after the commit; returns once the
        broker holds them all, so a gateway that reads on applies them within its lag."""
        by_partition: dict[int, list[str]] = {}
        for user_id in dict.fromkeys(user_ids):
            partition = inbox_partition(user_id, self._inbox_partitions)
            by_partition.setdefault(partition, []).append(user_id)
        acks = []
        for partition, users in by_partition.items():
            event = InboxMembershipV1(user_ids=users, channel_id=channel_id)
            key = channel_id if channel_id is not None else users[0]
            acks.append(
                await self._producer.send(
                    self._inbox, event.encode(), key=key.encode(), partition=partition
                )
            )
        await asyncio.gather(*acks)

    async def signal(self, event: ReadMovedV1 | TypingV1) -> None:
        """Queue a read-marker move or a typing event for the processors' relay, without
        waiting for the broker: both are soft (the marker is stored already; typing repeats)."""
        acked = await self._producer.send(
            self._signals, event.encode(), key=event.channel_id.encode()
        )
        acked.add_done_callback(_signal_acked)

    async def device_revoked(self, user_id: str, device_id: str) -> None:
        """Tell every gateway to close the device's sockets. Retried for up to
        `REVOKE_RETRY_S`: the device is revoked in the store already, and a logout the client
        retries would find its token refused and could not publish this again."""
        event = DeviceRevokedV1(user_id=user_id, device_id=device_id)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KafkaError),
            stop=stop_after_delay(REVOKE_RETRY_S),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            reraise=True,
        ):
            with attempt:
                await self._producer.send_and_wait(
                    self._inbox,
                    event.encode(),
                    key=user_id.encode(),
                    partition=inbox_partition(user_id, self._inbox_partitions),
                )

    async def presence_access_changed(self, watchers_of: dict[str, list[str]]) -> None:
        """For each watched user, the watchers whose right to watch them may have ended."""
        acks = []
        for user_id, watcher_ids in watchers_of.items():
            event = PresenceAccessChangedV1(user_id=user_id, watcher_ids=watcher_ids)
            acks.append(
                await self._producer.send(
                    self._presence_changes,
                    event.encode(),
                    key=f"access/{user_id}".encode(),
                    partition=key_partition(user_id, self._presence_partitions),
                )
            )
        await asyncio.gather(*acks)

    def presence(
        self,
        kind: PresenceKind,
        user_id: str,
        device_id: str,
        connection_id: str,
    ) -> None:
        """Publish a device's presence event in the background, never making the caller wait
        for the broker: presence is soft state, and the next heartbeat repairs a lost event."""
        # Queued, not a task each: thousands of sockets heartbeat at once after a reconnect
        # storm (or a bench's heartbeat loop), and a task, a pydantic event and its bytes per
        # socket, all alive until the broker acks, leave the heap fragmented once freed.
        self._presence_pending.append((kind, user_id, device_id, connection_id, now_ms()))
        if self._presence_flusher is None:
            self._presence_flusher = asyncio.create_task(self._flush_presence())

    async def _flush_presence(self) -> None:
        """Hands the queued presence events to the producer, in order, without waiting for the
        broker's acks (a failed one is logged)."""
        try:
            while self._presence_pending:
                pending, self._presence_pending = self._presence_pending, []
                for kind, user_id, device_id, connection_id, at_ms in pending:
                    event = PresenceEventV1(
                        kind=kind,
                        user_id=user_id,
                        device_id=device_id,
                        connection_id=connection_id,
                        at_ms=at_ms,
                    )
                    try:
                        acked = await self._presence_producer.send(
                            self._presence, event.encode(), key=user_id.encode()
                        )
                    except Exception as exc:
                        log.warning("a presence event was not published: %r", exc)
                        continue
                    acked.add_done_callback(_presence_acked)
        finally:
            self._presence_flusher = None


def _presence_acked(acked: asyncio.Future[object]) -> None:
    if not acked.cancelled() and acked.exception() is not None:
        log.warning("a presence event was not published: %r", acked.exception())


def _signal_acked(acked: asyncio.Future[object]) -> None:
    if not acked.cancelled() and acked.exception() is not None:
        log.warning("a read or typing signal was not published: %r", acked.exception())
