"""Publishes client events to topics: idempotent producers, acks=all.

A send retried by its client may still be published twice; every consumer tolerates that
(sends carry their idempotency key; deliveries are de-duplicated by message id).

Presence: a socket's `connect` and `disconnect`, and a device's `logout`, are published at
once, one `presence.event` each. Heartbeats are not: the sockets seen in an interval
(`heartbeat_timeout_s / SEEN_INTERVALS_PER_TIMEOUT`) go out as one `presence.seen` record per
presence partition that has any, whatever the number of sockets. All go through one queue and
one producer, in the order they were decided, so a socket's `connect` is on its partition
before any record naming it, and its `disconnect` after every one (a disconnect also takes the
socket out of the interval not yet published).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from typing import Any, Literal, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from schemas.events import (
    AdminActionV1,
    ChannelMembersV1,
    DeviceRevokedV1,
    InboxMembershipV1,
    InboxSignalV1,
    MessageChangeV1,
    MessageSendV1,
    PresenceAccessChangedV1,
    PresenceEventV1,
    PresenceSeenV1,
    ReadMovedV1,
    TypingV1,
    UserSuspendedV1,
)
from schemas.ids import now_ms
from schemas.settings import Settings
from topics.definitions import (
    audit_topic,
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

# Heartbeats are published as `presence.seen` this many times per heartbeat timeout (every
# 3.75 s by default): a sighting reaches the processor at most that much later than it would
# alone, well inside the timeout (a client heartbeats every `heartbeat_interval_s`, 15 s, and
# its liveness lasts `heartbeat_timeout_s`, 30 s).
SEEN_INTERVALS_PER_TIMEOUT = 8
# Entries per `presence.seen` record, about 80 bytes each: a partition with more sockets in an
# interval gets several records, each well under the producer's request size (1 MiB).
SEEN_MAX_ENTRIES = 5_000


# A channel's partition of the messages topic, for the channels this gateway's users send to
# lately: murmur2 is pure Python (4.3 µs a 26-character id, 0.09 from the cache). At most
# 2**14 channels, about 4 MiB (240 bytes an entry): a gateway's memory is per socket.
channel_partition = functools.lru_cache(maxsize=1 << 14)(key_partition)


class _Seen(NamedTuple):
    """One `presence.seen` record to publish: a partition's sockets seen in an interval."""

    partition: int
    entries: list[tuple[str, str, str, int]]  # (user_id, device_id, connection_id, at_ms)


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._messages = messages_topic(settings).name
        self._messages_partitions = settings.messages_partitions
        self._inbox = inbox_topic(settings).name
        self._inbox_partitions = settings.inbox_partitions
        self._audit = audit_topic(settings).name
        self._signals = signals_topic(settings).name
        self._presence = presence_topic(settings).name
        self._presence_changes = presence_changes_topic(settings).name
        self._presence_partitions = settings.presence_partitions
        self._presence_pending: list[tuple[PresenceKind, str, str, str, int] | _Seen] = []
        self._presence_flusher: asyncio.Task[None] | None = None
        # The same id as the registry's (gateway/registry.py): the key of this gateway's
        # `presence.seen` records.
        self._gateway_id = settings.gateway_id or f"{socket.gethostname()}:{settings.http_port}"
        self._seen_interval_s = settings.heartbeat_timeout_s / SEEN_INTERVALS_PER_TIMEOUT
        self._answer_s = settings.send_answer_timeout_s
        # The sockets seen in the current interval: connection -> (user, device, at_ms).
        self._seen: dict[str, tuple[str, str, int]] = {}
        self._seen_timer: asyncio.Task[None] | None = None
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.kafka_linger_ms,
            max_request_size=settings.kafka_max_request_bytes,
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )
        # Presence events are many, small and in no hurry: their own producer lingers so that
        # thousands of sockets' heartbeats go out as a few batches, not one request each.
        self._presence_producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.presence_linger_ms,
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )

    async def start(self) -> None:
        await self._producer.start()
        await self._presence_producer.start()

    async def stop(self) -> None:
        if self._seen_timer is not None:
            self._seen_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._seen_timer
        self._queue_seen()  # the last interval's sightings, before the producer stops
        if self._presence_flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._presence_flusher), 5)
        await self._presence_producer.stop()
        await self._producer.stop()

    async def acked(self, *acks: asyncio.Future[object]) -> None:
        """Until the broker holds every record, for at most `send_answer_timeout_s`; then
        `KafkaTimeoutError` (the producer goes on trying: the records may still be written)."""
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*acks)), self._answer_s)
        except TimeoutError:
            raise KafkaTimeoutError("the broker did not acknowledge in time") from None

    async def send_message(
        self,
        event: MessageSendV1 | MessageChangeV1,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]:
        """Queue a send; the returned future resolves when the broker acknowledged it.
        `headers`: the record's (a trace context, topics/tracing.py).

        Queueing happens before this returns, so calls made in order land in order.
        """
        # The channel's partition, as the producer's own (murmur2) partitioner would choose it,
        # but hashed once per channel (`channel_partition`), not on every send.
        fut: asyncio.Future[object] = await self._producer.send(
            self._messages,
            event.encode(),
            key=event.channel_id.encode(),
            partition=channel_partition(event.channel_id, self._messages_partitions),
            headers=headers,
        )
        return fut

    async def members_changed(self, channel_id: str, member_ids: list[str]) -> None:
        event = ChannelMembersV1(channel_id=channel_id, member_ids=member_ids)
        await self.acked(
            await self._producer.send(self._messages, event.encode(), key=channel_id.encode())
        )

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
        await self.acked(*acks)

    async def signal(self, event: ReadMovedV1 | TypingV1) -> None:
        """Queue a read-marker move or a typing event for the processors' relay, without
        waiting for the broker: both are soft (the marker is stored already; typing repeats)."""
        acked = await self._producer.send(
            self._signals, event.encode(), key=event.channel_id.encode()
        )
        acked.add_done_callback(_signal_acked)

    async def to_user(self, user_id: str, channel_id: str, frame: dict[str, Any]) -> None:
        """A ready server frame for every live socket of the user (`inbox.signal`, in their
        inbox partition, keyed by the channel it is about); returns once the broker holds it."""
        await self._to_inbox(user_id, InboxSignalV1(recipients=[user_id], frame=frame), channel_id)

    async def _to_inbox(
        self, user_id: str, event: InboxSignalV1 | DeviceRevokedV1 | UserSuspendedV1, key: str
    ) -> None:
        """Publish `event` to the user's inbox partition; returns once the broker holds it."""
        partition = inbox_partition(user_id, self._inbox_partitions)
        ack = await self._producer.send(
            self._inbox, event.encode(), key=key.encode(), partition=partition
        )
        await self.acked(ack)

    async def device_revoked(self, user_id: str, device_id: str) -> None:
        """Tell every gateway to close the device's sockets. Retried for up to
        `REVOKE_RETRY_S`: the device is revoked in the store already, and a logout the client
        retries would find its token refused and could not publish this again."""
        await self._to_user_retried(user_id, DeviceRevokedV1(user_id=user_id, device_id=device_id))

    async def user_suspended(self, user_id: str) -> None:
        """Tell every gateway to close the user's sockets. Retried as `device_revoked`: the
        suspension is in the store already."""
        await self._to_user_retried(user_id, UserSuspendedV1(user_id=user_id))

    async def _to_user_retried(
        self, user_id: str, event: DeviceRevokedV1 | UserSuspendedV1
    ) -> None:
        """Publish `event` to the user's inbox partition, retried for up to `REVOKE_RETRY_S`
        (what it tells is in the store already: nothing else would publish it again)."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KafkaError),
            stop=stop_after_delay(REVOKE_RETRY_S),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            reraise=True,
        ):
            with attempt:
                await self._to_inbox(user_id, event, user_id)

    async def admin_action(self, event: AdminActionV1) -> None:
        """Record an operator's action on the audit topic; returns once the broker holds it."""
        key = event.target if event.target is not None else event.actor
        await self.acked(await self._producer.send(self._audit, event.encode(), key=key.encode()))

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
        await self.acked(*acks)

    def presence(
        self,
        kind: PresenceKind,
        user_id: str,
        device_id: str,
        connection_id: str,
    ) -> None:
        """Publish a device's presence event in the background, never making the caller wait
        for the broker: presence is soft state, and the next heartbeat repairs a lost event.

        A `heartbeat` is kept for the interval's `presence.seen` record of the user's
        partition (the socket's latest time in the interval); the other kinds are queued at
        once."""
        if kind == "heartbeat":
            self._seen[connection_id] = (user_id, device_id, now_ms())
            if self._seen_timer is None:
                self._seen_timer = asyncio.create_task(self._seen_every_interval())
            return
        if kind == "disconnect":
            # A sighting of the socket not yet published never will be: the disconnect
            # carries a later time, and a `seen` after it would say nothing more.
            self._seen.pop(connection_id, None)
        # Queued, not a task each: thousands of sockets connect at once after a reconnect
        # storm, and a task, a pydantic event and its bytes per socket, all alive until the
        # broker acks, leave the heap fragmented once freed.
        self._presence_pending.append((kind, user_id, device_id, connection_id, now_ms()))
        self._start_presence_flusher()

    async def _seen_every_interval(self) -> None:
        """Queue the interval's `presence.seen` records at the end of each interval, while
        sockets heartbeat; stops after an interval with none (a heartbeat starts it again)."""
        try:
            while True:
                await asyncio.sleep(self._seen_interval_s)
                if not self._seen:
                    break
                self._queue_seen()
        finally:
            self._seen_timer = None

    def _queue_seen(self) -> None:
        """Queue the sockets seen since the last call, one record per partition (several if
        it has more than `SEEN_MAX_ENTRIES`), behind every event decided before."""
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        by_partition: dict[int, list[tuple[str, str, str, int]]] = {}
        for connection_id, (user_id, device_id, at_ms) in seen.items():
            partition = key_partition(user_id, self._presence_partitions)
            by_partition.setdefault(partition, []).append(
                (user_id, device_id, connection_id, at_ms)
            )
        for partition, entries in sorted(by_partition.items()):
            for start in range(0, len(entries), SEEN_MAX_ENTRIES):
                self._presence_pending.append(
                    _Seen(partition, entries[start : start + SEEN_MAX_ENTRIES])
                )
        self._start_presence_flusher()

    def _start_presence_flusher(self) -> None:
        if self._presence_flusher is None:
            self._presence_flusher = asyncio.create_task(self._flush_presence())

    async def _flush_presence(self) -> None:
        """Hands the queued presence events to the producer, in order, without waiting for the
        broker's acks (a failed one is logged)."""
        try:
            while self._presence_pending:
                pending, self._presence_pending = self._presence_pending, []
                for item in pending:
                    # A user's events are keyed by user id (the default partitioner puts them
                    # in `key_partition(user_id)`); a `seen` record goes to that partition.
                    partition: int | None = None
                    if isinstance(item, _Seen):
                        partition = item.partition
                        key = f"seen/{self._gateway_id}".encode()
                        value = PresenceSeenV1(
                            gateway_id=self._gateway_id,
                            partition=item.partition,
                            at_ms=now_ms(),
                            seen=item.entries,
                        ).encode()
                    else:
                        kind, user_id, device_id, connection_id, at_ms = item
                        key = user_id.encode()
                        value = PresenceEventV1(
                            kind=kind,
                            user_id=user_id,
                            device_id=device_id,
                            connection_id=connection_id,
                            at_ms=at_ms,
                        ).encode()
                    try:
                        acked = await self._presence_producer.send(
                            self._presence, value, key=key, partition=partition
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
