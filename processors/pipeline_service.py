"""The worker's consumers as one service: the message pipeline, presence and the signal relay
(read-marker moves and typing) on one consumer, the search indexer and the notifier on a second,
gathering one (processors/consumer.py), all writing with one producer; and the presence timer.

Faust supervises it (started and stopped with the worker) and serves its pages; no record passes
through Faust's stream machinery or a consumer thread of its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import mode

from processors import metrics
from processors.consumer import BatchHandler, Gathered, PartitionedConsumer, Route
from processors.indexer import SearchIndexer
from processors.joined_inserts import JoinedInserts
from processors.notifier import Notifier, NotifierConfig
from processors.pipeline import MessagePipeline, Topics
from processors.presence_service import PresenceService
from processors.producer import RecordProducer
from processors.push_providers import PushProvider, open_provider
from processors.signals import SignalRelay
from schemas.settings import Settings
from storage.search import tokens
from storage.stores import SharedStores, Stores
from topics import tracing
from topics.definitions import (
    messages_topic,
    presence_changes_topic,
    presence_topic,
    signals_topic,
)
from topics.tracing import Headers

log = logging.getLogger("parley.processor")


class PipelineService(mode.Service):
    def __init__(
        self, settings: Settings, shared: SharedStores, topics: Topics, **kwargs: Any
    ) -> None:
        self._settings = settings
        self._shared = shared
        self._topics = topics
        self.producer = RecordProducer(settings, f"{settings.processor_id}-pipeline")
        # The delivery path: a fetch returns as soon as a send arrives. Presence and signals
        # share its fetches (they are live too), as one member of one group: with as many
        # presence as messages partitions, a worker owns the same numbers of both.
        self.presence_topic = presence_topic(settings).name
        self.consumer = PartitionedConsumer(
            settings,
            settings.processor_id,
            [
                Route(
                    messages_topic(settings).name,
                    self._messages,
                    heavy_bytes=settings.processor_heavy_record_bytes,
                ),
                Route(self.presence_topic, lambda _: self._presence_batch),
                Route(signals_topic(settings).name, lambda _: self._signals),
            ],
        )
        # Pushes and the index follow the pipeline's output in no hurry, in a consumer (and
        # group) of their own: the pipeline's fetches are not woken by its own records, and
        # theirs wait for company at the broker.
        self.followers = PartitionedConsumer(
            settings,
            f"{settings.processor_id}-followers",
            [
                Route(topics.stored, lambda _: self._index),
                Route(topics.inbox, lambda _: self._notify),
            ],
            gather_s=settings.followers_fetch_wait_s,
        )
        self._stores: Stores | None = None
        self._inserts: JoinedInserts | None = None
        self._provider: PushProvider | None = None
        self._indexer: SearchIndexer | None = None
        self._notifier: Notifier | None = None
        self._consuming: list[asyncio.Task[None]] = []
        # Both wait for company across partitions: one insert, or one push decision (its
        # queries), per window rather than per partition batch.
        self._index = Gathered(self._index_batch, settings.index_batch_within_s)
        self._notify = Gathered(self._notify_batch, settings.push_batch_within_s)
        # A user's read-marker moves in a channel coalesce into one over this window, and a
        # channel's moves into one `receipts` frame.
        self._signals = Gathered(self._signals_batch, settings.signals_batch_within_s)
        self.presence: PresenceService | None = None
        self._relay: SignalRelay | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        tokens.warm()  # before any partition is read: the first text beyond ASCII stalls none
        stores = self._stores = await self._shared.acquire()
        # The partitions' new rows of one turn of the loop, in one statement; a batch as large
        # as a heavy lane's record (a character is at most 4 bytes) alone.
        self._inserts = JoinedInserts(
            stores.messages, self._settings.processor_heavy_record_bytes // 4
        )
        self._provider = open_provider(self._settings)
        self._indexer = SearchIndexer(stores.search)
        settings = self._settings
        self._notifier = Notifier(
            stores.push,
            stores.presence,
            stores.reads,
            stores.channels,
            self._provider,
            NotifierConfig(
                coalesce_ms=int(settings.push_coalesce_s * 1000),
                max_age_ms=int(settings.push_max_age_s * 1000),
                preview_chars=settings.push_preview_chars,
                concurrency=settings.push_concurrency,
            ),
        )
        self._relay = SignalRelay(
            stores.channels, self.producer, self._topics.inbox, self._topics.inbox_partitions
        )
        self.presence = PresenceService(
            stores.presence,
            self.producer,
            presence_changes_topic(settings).name,
            settings.presence_partitions,
            settings.heartbeat_timeout_s,
        )
        await self.producer.start()
        self._consuming = [
            asyncio.create_task(self._consume(consumer))
            for consumer in (self.consumer, self.followers)
        ]
        self._consuming.append(asyncio.create_task(self._presence_ticks(self.presence)))
        # What start-up made lives as long as the worker: out of the collector's scans.
        gc.freeze()

    async def on_stop(self) -> None:
        # The consumer first: the batches in hand finish with the producer still open.
        for task in self._consuming:
            task.cancel()
        if self._consuming:
            await asyncio.wait(self._consuming)
        await self.producer.stop()
        if self._provider is not None:
            await self._provider.close()
        if self._stores is not None:
            self._stores = None
            await self._shared.release()

    async def _consume(self, consumer: PartitionedConsumer) -> None:
        try:
            await consumer.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Kafka unreachable for good, or a bug: the worker ends and its supervisor
            # restarts it; the uncommitted batches are read again.
            log.critical("the pipeline's consumer failed: %r", exc)
            await self.crash(exc)

    # --- routes -----------------------------------------------------------------------------

    def _messages(self, partition: int) -> BatchHandler:
        # One pipeline per partition: its sequencer knows only its own channels, and is
        # dropped with the partition when it is revoked.
        assert self._stores is not None
        pipeline = MessagePipeline(
            self._stores.messages,
            self._stores.channels,
            self.producer,
            self._topics,
            self._settings.membership_cache_ttl_s,
            self._inserts,
        )

        async def handle(batch: list[bytes], headers: list[Headers]) -> None:
            started = time.perf_counter()
            parents = [tracing.parent_of(h) for h in headers] if tracing.enabled() else None
            result = await pipeline.handle(batch, parents)
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            metrics.STORED.inc(len(result.stored) + result.claimed)
            metrics.REPEATED.inc(len(result.repeated) - result.claimed)
            metrics.DEAD.inc(result.dead)
            metrics.DEAD_ACCEPTED.inc(result.dead_accepted)

        return handle

    async def _presence_ticks(self, presence: PresenceService) -> None:
        """Time out silent users every `presence_tick_s`, not only when an event arrives, and
        follow the presence partitions this worker gains and loses."""
        while True:
            await asyncio.sleep(self._settings.presence_tick_s)
            owned = self.consumer.owned(self.presence_topic)
            try:
                metrics.PRESENCE_CHANGES.inc(await presence.tick(owned))
            except Exception:
                # The next tick tries again; an error here must not stop the worker.
                log.exception("presence timer failed")

    async def _presence_batch(self, batch: list[bytes], _: list[Headers]) -> None:
        assert self.presence is not None
        metrics.PRESENCE_CHANGES.inc(await self.presence.handle(batch))
        metrics.PRESENCE_EVENTS.inc(len(batch))

    async def _signals_batch(self, batch: list[bytes], _: list[Headers]) -> None:
        assert self._relay is not None
        metrics.SIGNALS.inc(len(batch))
        await self._relay.handle(batch)

    async def _index_batch(self, batch: list[bytes], _: list[Headers]) -> None:
        assert self._indexer is not None
        indexed = await self._indexer.handle(batch)
        metrics.INDEXED.inc(indexed.indexed)
        metrics.INDEX_SKIPPED.inc(indexed.skipped)

    async def _notify_batch(self, batch: list[bytes], _: list[Headers]) -> None:
        assert self._notifier is not None
        notified = await self._notifier.handle(batch)
        metrics.PUSHES_SENT.inc(notified.sent)
        metrics.PUSHES_FAILED.inc(notified.failed)
