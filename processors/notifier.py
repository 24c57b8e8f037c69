"""The notifier: push notifications for messages a user was not connected to receive.

It follows `parley.inbox.v1` (each record: one message and its recipients in one inbox
partition) in its own agent, so pushes never hold up delivery. For each recipient other than
the sender it pushes when all of these hold:
- the message is younger than `push_max_age_s` (a replayed backlog pushes nothing);
- the user has a push endpoint on a live device (registered with `PUT /v1/push/endpoints/current`);
- the user has no open socket (presence `connected`, decided by the presence processor: it
  drops with the last socket, while `online` waits out the heartbeat timeout);
- the user has not read it already on another device (the read marker is not at or past it);
- it is a message, not a change (an edit, a delete or a reaction never pushes);
- the user's notification settings for the channel let it through
  (`storage.protocols.Notifications.notifies`): at level `none` nothing pushes; at level
  `mentions`, or while the channel is muted, only a message that mentions them;
- the store grants the claim: one push per (user, channel) per burst. Later messages of the
  channel are coalesced into that push until the user has been active again or
  `push_coalesce_s` passed.

Invariant: one push per message per user at most, and none lost to a crash. The claim is
written before the push is sent and marked done after, in the store. An inbox record seen again
(a crash before the offsets were committed) finds its claim taken, so it makes no new push; if
the claim is not done, the same push (same `push_id`) is sent again. Providers retry under that
`push_id` too: a relay drops a push id it has already taken, and then each burst notifies once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from processors.push_providers import PushProvider
from schemas.events import InboxMessageV1, inbox_event
from schemas.ids import id_floor, id_unix_ms, now_ms
from schemas.message import Message
from schemas.push import PushNotificationV1, PushTarget
from storage.protocols import (
    DEFAULT_NOTIFICATIONS,
    ChannelStore,
    PresenceStore,
    PushCandidate,
    PushEndpoint,
    PushStore,
    ReadStore,
)

log = logging.getLogger("parley.notifier")


@dataclass(frozen=True)
class NotifierConfig:
    coalesce_ms: int
    max_age_ms: int
    preview_chars: int
    concurrency: int


@dataclass(frozen=True)
class Notified:
    sent: int
    failed: int


class Notifier:
    def __init__(
        self,
        push: PushStore,
        presence: PresenceStore,
        reads: ReadStore,
        channels: ChannelStore,
        provider: PushProvider,
        config: NotifierConfig,
    ) -> None:
        self._push = push
        self._presence = presence
        self._reads = reads
        self._channels = channels
        self._provider = provider
        self._config = config
        self._sending = asyncio.Semaphore(config.concurrency)

    async def handle(self, batch: Sequence[bytes]) -> Notified:
        """Decide and send the pushes of a batch of inbox records."""
        missed = self._missed(batch)
        if not missed:
            return Notified(0, 0)
        users = sorted({user_id for user_id, _ in missed})
        endpoints = await self._push.endpoints(users)
        presence = await self._presence.get([u for u in users if u in endpoints])
        pairs = sorted({(u, m.channel_id) for u, m in missed if u in endpoints})
        read = await self._reads.read_upto(pairs)
        settings = await self._channels.notifications(pairs)
        now = now_ms()
        candidates = []
        messages: dict[tuple[str, int], Message] = {}
        for user_id, message in missed:
            state = presence.get(user_id)
            if user_id not in endpoints or (state is not None and state.connected):
                continue
            if read.get((user_id, message.channel_id), 0) >= message.message_id:
                continue  # read on another device already
            mentioned = user_id in (message.mentions or ())
            if not settings.get((user_id, message.channel_id), DEFAULT_NOTIFICATIONS).notifies(
                mentioned, now
            ):
                continue  # the user's level or mute leaves it out
            active_floor = id_floor(state.last_active_ms) if state is not None else 0
            candidates.append(
                PushCandidate(user_id, message.channel_id, message.message_id, active_floor)
            )
            messages[(message.channel_id, message.message_id)] = message
        claimed = await self._push.claim(candidates, self._config.coalesce_ms)
        results = await asyncio.gather(
            *(
                self._send(c, messages[(c.channel_id, c.message_id)], endpoints[c.user_id])
                for c in claimed
            )
        )
        await self._push.finish(claimed)
        sent = sum(results)
        return Notified(sent, len(results) - sent)

    def _missed(self, batch: Sequence[bytes]) -> list[tuple[str, Message]]:
        """(recipient, message) for every fresh message and recipient other than its sender."""
        oldest_ms = now_ms() - self._config.max_age_ms
        missed = []
        for raw in batch:
            try:
                event = inbox_event.validate_json(raw)
            except ValueError:
                continue  # the gateways skip it too; the pipeline wrote it, nothing to park
            if not isinstance(event, InboxMessageV1):
                continue
            message = event.message
            if message.kind != "message":
                continue  # edits, deletes and reactions never push
            if id_unix_ms(message.message_id) < oldest_ms:
                continue
            missed += [(u, message) for u in event.recipients if u != message.sender_id]
        return missed

    async def _send(
        self, claim: PushCandidate, message: Message, endpoints: list[PushEndpoint]
    ) -> bool:
        push = PushNotificationV1(
            push_id=f"{claim.user_id}.{claim.channel_id}.{claim.message_id}",
            user_id=claim.user_id,
            targets=[
                PushTarget(device_id=e.device_id, platform=e.platform, token=e.token)
                for e in endpoints
            ],
            channel_id=message.channel_id,
            message_id=str(message.message_id),
            sender_id=message.sender_id,
            preview=message.text[: self._config.preview_chars],
            sent_at=message.sent_at,
        )
        async with self._sending:
            try:
                delivered = await self._provider.send(push)
            except Exception:
                log.exception("push %s failed", push.push_id)
                return False
        if not delivered:
            log.warning("push %s given up", push.push_id)
        return delivered
