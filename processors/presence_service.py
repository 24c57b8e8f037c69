"""Runs the presence tracker against the world: persists each change, then publishes it.

Invariant: a change is written to Postgres before it is published on
`parley.presence-changes.v1` (only online/offline flips are published; a change of `connected`
alone is news for the notifier, which reads it from the store), so a gateway that reads a
snapshot from Postgres and then follows the changes topic misses nothing (it may see a change
twice; it sends a status only when it differs from the last one it sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from processors.backoff import backoff
from processors.pipeline import RecordSink
from processors.presence import Change, PresenceTracker
from schemas.events import PresenceChangedV1, PresenceEventV1, PresenceSeenV1, presence_input
from schemas.ids import iso_ms, now_ms
from storage.protocols import PresenceStore
from topics.definitions import key_partition

log = logging.getLogger("parley.presence")


class PresenceService:
    def __init__(
        self,
        store: PresenceStore,
        sink: RecordSink,
        changes_topic: str,
        partitions: int,
        timeout_s: float,
    ) -> None:
        self._store = store
        self._sink = sink
        self._topic = changes_topic
        self._partitions = partitions
        self._tracker = PresenceTracker(int(timeout_s * 1000))
        self._owned: set[int] = set()
        self._unpublished: list[Change] = []  # decided, not yet saved and published
        # Events and the timer both change the tracker; changes go out in the order decided.
        self._lock = asyncio.Lock()

    async def handle(self, batch: Sequence[bytes]) -> int:
        """Apply a batch of records in order: device events (`presence.event`, each kind, the
        `heartbeat`s of gateways from before `presence.seen` included) and gateways' aggregated
        heartbeats (`presence.seen`); returns the number of online/offline changes."""
        events: list[PresenceEventV1 | PresenceSeenV1] = []
        for raw in batch:
            try:
                events.append(presence_input.validate_json(raw))
            except ValueError:
                continue  # permanently unreadable; presence is soft state, nothing to park
        async with self._lock:
            now = now_ms()
            changes: list[Change] = []
            for event in events:
                if isinstance(event, PresenceSeenV1):
                    changes += self._tracker.apply_seen(event, now)
                elif (change := self._tracker.apply(event, now)) is not None:
                    changes.append(change)
            self._unpublished += changes
            # The batch is not acknowledged until its changes are out: retry, never drop.
            attempt = 0
            while True:
                try:
                    await self._publish()
                    break
                except Exception as exc:
                    log.warning("publishing presence changes failed, retrying: %r", exc)
                    await asyncio.sleep(backoff(attempt))
                    attempt += 1
        return sum(c.status_changed for c in changes)

    async def tick(self, owned_partitions: Iterable[int]) -> int:
        """Follow this worker's partitions and time out silent users; returns changes made."""
        async with self._lock:
            owned = set(owned_partitions)
            gained, lost = owned - self._owned, self._owned - owned
            if lost:
                self._tracker.forget(
                    {
                        u
                        for u in self._tracker.user_ids()
                        if key_partition(u, self._partitions) in lost
                    }
                )
            if gained:
                self._tracker.recover(await self._store.online_in(sorted(gained)), now_ms())
            self._owned = owned
            changes = self._tracker.expire(now_ms())
            self._unpublished += changes
            await self._publish()  # on failure they stay unpublished for the next tick
        return sum(c.status_changed for c in changes)

    async def _publish(self) -> None:
        changes = self._unpublished
        if not changes:
            return
        await self._store.save(
            [(c.presence, key_partition(c.presence.user_id, self._partitions)) for c in changes]
        )
        pending = []
        for change in (c.presence for c in changes if c.status_changed):
            event = PresenceChangedV1(
                user_id=change.user_id,
                status=change.status,
                last_active_at=iso_ms(change.last_active_ms),
            )
            pending.append(
                await self._sink.send(
                    self._topic,
                    change.user_id.encode(),
                    event.encode(),
                    key_partition(change.user_id, self._partitions),
                    None,
                    None,
                )
            )
        await asyncio.gather(*pending)
        self._unpublished = self._unpublished[len(changes) :]
