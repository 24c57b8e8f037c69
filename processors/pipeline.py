"""The message pipeline: sequence, persist, fan out. One batch of `parley.messages.v1` at a time.

Invariants (docs/architecture.md):
- At-least-once: a batch's offsets are committed only after its messages are stored and their
  inbox records acknowledged. A crash repeats work; it never skips it.
- Idempotent: a send seen again (same device, same client_msg_id) keeps the id it was given and
  is fanned out again; gateways drop deliveries they already made.
- Ordered: a channel's messages are stored and fanned out in id order.
- Reactions are capped here, in the channel's order (one writer per channel): a reaction beyond
  the caps is stored and delivered as taken back, with the reason (`refused`).
- Mentions are resolved here, in the channel's order, against its members at that point
  (schemas/mentions.py), and stored with the message: a replay reads them, never resolves again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from aiokafka.errors import KafkaError
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from pydantic import ValidationError

from processors.backoff import backoff
from processors.fanout import inbox_records
from processors.joined_inserts import JoinedInserts
from processors.membership import MembershipCache
from processors.sequencer import Sequencer
from schemas.events import (
    ChannelMembersV1,
    MessageChangeV1,
    MessageSendV1,
    StoredMessageV1,
    messages_event,
)
from schemas.ids import iso_ms
from schemas.limits import MAX_PINS_PER_CHANNEL
from schemas.mentions import mentioned_names, resolve
from schemas.message import Message, quote_of, reaction_refusal
from storage.errors import PermanentStoreError
from storage.protocols import ChannelStore, MessageStore, SendKey
from topics import tracing
from topics.definitions import key_partition, stored_key

log = logging.getLogger("parley.pipeline")

# The producer retries a record until the broker takes it (it is idempotent, so it never gives
# one up): a batch waits that long, and says so every this many seconds (its partition waits).
ACK_WARN_S = 30.0


async def _acknowledged(pending: list[Awaitable[object]]) -> None:
    """Until the broker acknowledged every record, warning while it has not."""
    acked = asyncio.gather(*pending)
    waited = 0.0
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(acked), ACK_WARN_S)
            return
        except TimeoutError:
            waited += ACK_WARN_S
            log.warning(
                "the broker has not acknowledged %d records of a batch in %.0f s",
                len(pending),
                waited,
            )


# (channel, message) -> emoji -> who reacted, for the messages a batch's reactions add to.
_Reactions = dict[tuple[str, int], dict[str, set[str]]]
# channel -> the ids of its pinned messages, for the channels a batch's pins name.
_Pins = dict[str, set[int]]
# sender -> username -> the user a mention of that name by that sender names.
_Mentionable = dict[str, dict[str, str]]


def is_permanent(exc: Exception) -> bool:
    """An error that retrying the same event can never fix: the store refuses the data
    (whichever backend: stores classify their own errors), or Kafka refuses the record."""
    if isinstance(exc, PermanentStoreError):
        return True
    return isinstance(exc, KafkaError) and not exc.retriable


class RecordSink(Protocol):
    """Where the pipeline writes records (`processors.producer.RecordProducer` in the worker)."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> Awaitable[object]: ...


@dataclass
class BatchResult:
    stored: list[Message] = field(default_factory=list)
    repeated: list[Message] = field(default_factory=list)
    dead: int = 0
    # Of `dead`, events that were valid: a gateway accepted them, so they should have been
    # stored. The gateway validates everything the store could refuse, so this is an alarm.
    dead_accepted: int = 0
    # Of `repeated`, sends this batch's first try stored before the store refused it (a store
    # whose claims are not all-or-nothing, as the Scylla store's per-send claims): new, and
    # counted as stored.
    claimed: int = 0

    def add(self, other: BatchResult) -> None:
        self.stored += other.stored
        self.repeated += other.repeated
        self.claimed += other.claimed
        self.dead += other.dead
        self.dead_accepted += other.dead_accepted


@dataclass(frozen=True)
class Topics:
    inbox: str
    inbox_partitions: int
    dead_letter: str
    stored: str
    stored_partitions: int


class MessagePipeline:
    def __init__(
        self,
        messages: MessageStore,
        channels: ChannelStore,
        sink: RecordSink | None,
        topics: Topics,
        membership_ttl_s: float = 30.0,
        inserts: JoinedInserts | None = None,
    ) -> None:
        """`inserts`: writes the new rows of this pipeline's batches together with other
        partitions' (processors/joined_inserts.py); None: each batch on its own."""
        self._messages = messages
        self._insert_new = messages.insert_new if inserts is None else inserts.insert_new
        self._channels = channels
        self._sink = sink
        self._topics = topics
        self.sequencer = Sequencer(messages)
        self.membership = MembershipCache(channels, membership_ttl_s)

    async def handle(
        self, batch: Sequence[bytes], parents: Sequence[Context | None] | None = None
    ) -> BatchResult:
        """Process a batch until it succeeds. Never skips an event it could process later:
        only an event that can never be stored is parked on the dead-letter topic.
        `parents`: each record's trace context, when tracing is on (topics/tracing.py)."""
        attempt = 0
        while True:
            try:
                return await self._handle_once(batch, parents)
            except Exception as exc:
                if not is_permanent(exc):
                    # Retryable (or not understood): nothing is committed, the batch is tried
                    # again from the start, with backoff. The partition waits; nothing is lost.
                    delay = backoff(attempt)
                    log.warning("batch of %d failed, retrying in %.2fs: %r", len(batch), delay, exc)
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                if len(batch) == 1:
                    log.critical(
                        "an accepted event can never be stored; the gateway should have "
                        "refused it: %r",
                        exc,
                    )
                    await self._dead_letter(batch[0], repr(exc))
                    return BatchResult(dead=1, dead_accepted=1)
                # Permanent: find the event(s) at fault by taking the batch one event at a time
                # (the events before it are stored again harmlessly: writes are idempotent).
                result = BatchResult()
                for i, raw in enumerate(batch):
                    result.add(await self.handle([raw], [parents[i]] if parents else None))
                return result

    async def _handle_once(
        self, batch: Sequence[bytes], parents: Sequence[Context | None] | None
    ) -> BatchResult:
        result = BatchResult()
        events: list[MessageSendV1 | MessageChangeV1 | ChannelMembersV1] = []
        spans: dict[SendKey, Span] = {}  # of the sends that carry a trace context
        for i, raw in enumerate(batch):
            try:
                event = messages_event.validate_json(raw)
            except ValidationError as exc:
                # Permanent: the event can never be processed; park it and move on.
                await self._dead_letter(raw, str(exc).splitlines()[0])
                result.dead += 1
                continue
            events.append(event)
            parent = parents[i] if parents else None
            if parent is not None and not isinstance(event, ChannelMembersV1):
                span = tracing.begin("parley.pipeline", parent, SpanKind.CONSUMER)
                span.set_attribute("parley.channel_id", event.channel_id)
                spans[(event.sender_device_id, event.client_msg_id)] = span
        try:
            return await self._store_and_fan_out(events, result, spans)
        finally:
            for span in spans.values():
                span.end()

    async def _store_and_fan_out(
        self,
        events: list[MessageSendV1 | MessageChangeV1 | ChannelMembersV1],
        result: BatchResult,
        spans: dict[SendKey, Span],
    ) -> BatchResult:
        sends = [e for e in events if not isinstance(e, ChannelMembersV1)]
        channels = {e.channel_id for e in sends}
        try:
            await self.sequencer.load(channels)
            if self._sink is not None:
                await self.membership.load(channels)
            reactions = await self._reactions(sends)
            pins = await self._pins(sends)
            mentionable = await self._mentionable(sends)
            # The common case first: no send of the batch was stored before, and the batch is
            # stored in one round trip. The ids are those the lookup below would give when it
            # finds nothing, so a replay gives the same ids whichever way a batch went.
            fresh = BatchResult(dead=result.dead)
            deliveries = self._assign(events, {}, fresh, reactions, pins, mentionable)
            if await self._insert_new(fresh.stored):
                result = fresh
            else:
                # A send seen again (a client's resend, a repeat after a crash): nothing of
                # the first try was stored; the ids handed out for it are taken back.
                self.sequencer.forget(channels)
                await self.sequencer.load(channels)
                found = await self._messages.find_sent(
                    [(e.sender_device_id, e.client_msg_id) for e in sends]
                )
                if self._sink is not None:
                    # A send seen again goes to its stored channel's members (a client that
                    # reused a client_msg_id in another channel gets its original message,
                    # not a leak).
                    await self.membership.load({m.channel_id for m in found.values()})
                first_try = {(m.sender_device_id, m.client_msg_id): m for m in fresh.stored}
                result.claimed += sum(
                    1
                    for key, m in found.items()
                    if key in first_try and first_try[key].message_id == m.message_id
                )
                deliveries = self._assign(events, found, result, reactions, pins, mentionable)
                await self._messages.insert(result.stored)
        except BaseException:
            self.sequencer.forget(channels)
            raise
        await self._fan_out(deliveries, spans)
        return result

    async def _reactions(self, events: Sequence[MessageSendV1 | MessageChangeV1]) -> _Reactions:
        """The stored reactions of each message that a reaction of the batch adds to: the caps
        are judged from them, and from the batch's changes before each, in stream order. The
        store holds every earlier batch's changes (each is stored before the next is read)."""
        targets = list(
            dict.fromkeys(
                (e.channel_id, int(e.target_id))
                for e in events
                if isinstance(e, MessageChangeV1) and e.kind == "reaction" and not e.removed
            )
        )
        found = await asyncio.gather(*(self._messages.get(*target) for target in targets))
        return {
            target: {emoji: set(who) for emoji, who in ((m and m.reactions) or {}).items()}
            for target, m in zip(targets, found, strict=True)
        }

    async def _pins(self, events: Sequence[MessageSendV1 | MessageChangeV1]) -> _Pins:
        """The stored pins of each channel a pin of the batch names: the cap is judged from
        them, and from the batch's pins, unpins and deletes before each, in stream order."""
        channels = sorted(
            {e.channel_id for e in events if isinstance(e, MessageChangeV1) and e.kind == "pin"}
        )
        found = await asyncio.gather(*(self._messages.pins(c) for c in channels))
        return {c: {m.message_id for m in p} for c, p in zip(channels, found, strict=True)}

    async def _mentionable(self, events: Sequence[MessageSendV1 | MessageChangeV1]) -> _Mentionable:
        """Who the names the batch's sends mention are (one store read, for a batch with any
        `@name`; a batch without costs nothing), and the member lists of their channels."""
        asks = {
            (e.sender_id, name): e.channel_id
            for e in events
            if isinstance(e, MessageSendV1)
            for alternatives in mentioned_names(e.text)
            for name in alternatives
        }
        if not asks:
            return {}
        await self.membership.load(set(asks.values()))
        found: _Mentionable = {}
        for (sender, name), user_id in (await self._channels.mentionable(list(asks))).items():
            found.setdefault(sender, {})[name] = user_id
        return found

    def _assign(
        self,
        events: Sequence[MessageSendV1 | MessageChangeV1 | ChannelMembersV1],
        found: dict[SendKey, Message],
        result: BatchResult,
        reactions: _Reactions,
        pins: _Pins,
        mentionable: _Mentionable,
    ) -> list[tuple[Message, list[str]]]:
        """Give new sends their ids, in stream order; each with the members at that point,
        who are also those its mentions may name. A new reaction or pin is judged against the
        caps (`reactions` and `pins` are left as they are)."""
        deliveries: list[tuple[Message, list[str]]] = []
        seen = dict(found)
        state = {target: {e: set(who) for e, who in r.items()} for target, r in reactions.items()}
        pinned = {channel_id: set(ids) for channel_id, ids in pins.items()}
        for event in events:
            if isinstance(event, ChannelMembersV1):
                self.membership.set(event.channel_id, event.member_ids)
                continue
            key = (event.sender_device_id, event.client_msg_id)
            message = seen.get(key)
            if message is not None:
                self.sequencer.observe(message.channel_id, message.message_id)
                result.repeated.append(message)
            else:
                message = _row(event, self.sequencer.next_id(event.channel_id, event.sent_at_ms))
                if isinstance(event, MessageSendV1) and mentionable:
                    message = self._with_mentions(message, mentionable)
                if message.kind == "reaction":
                    message = _capped(message, state)
                elif message.kind in ("pin", "unpin", "delete"):
                    message = _pin_capped(message, pinned)
                seen[key] = message
                result.stored.append(message)
            deliveries.append((message, self.membership.members(message.channel_id)))
        return deliveries

    def _with_mentions(self, message: Message, mentionable: _Mentionable) -> Message:
        """The message with the members its `@name`s name (schemas/mentions.py), if any."""
        names = mentioned_names(message.text)
        if not names:
            return message
        sender = message.sender_id
        members = set(self.membership.members(message.channel_id))
        mentions = resolve(names, mentionable.get(sender, {}), members, sender)
        return message.model_copy(update={"mentions": mentions}) if mentions else message

    async def _fan_out(
        self, deliveries: list[tuple[Message, list[str]]], spans: dict[SendKey, Span]
    ) -> None:
        if self._sink is None:
            return
        stored = [message for message, _ in deliveries]
        deliveries = await self._quoted(await self._visible_changes(deliveries))
        pending = []
        for message, recipients in deliveries:
            key = message.channel_id.encode()
            headers = _headers(spans, message)
            for partition, record in inbox_records(
                message, recipients, self._topics.inbox_partitions
            ):
                pending.append(
                    await self._sink.send(self._topics.inbox, key, record, partition, None, headers)
                )
        pending += await self._publish_stored(stored, spans)
        # Acknowledged by the broker (acks=all) before the batch's offsets may be committed.
        await _acknowledged(pending)

    async def _visible_changes(
        self, deliveries: list[tuple[Message, list[str]]]
    ) -> list[tuple[Message, list[str]]]:
        """A change (edit, delete, reaction) goes only to the members who may see its message
        (storage/visibility.py): an edit's text is the message's text. Messages are left as
        they are, and a batch without changes costs nothing more."""
        changed = {m.channel_id for m, _ in deliveries if m.target_id is not None}
        if not changed:
            return deliveries
        lowest = await self.membership.lowest_visible(changed)
        out = []
        for message, recipients in deliveries:
            if message.target_id is not None:
                floors = lowest.get(message.channel_id, {})
                target = message.target_id
                recipients = [u for u in recipients if target >= floors.get(u, 1)]
            out.append((message, recipients))
        return out

    async def _quoted(
        self, deliveries: list[tuple[Message, list[str]]]
    ) -> list[tuple[Message, list[str]]]:
        """A reply goes out with its quote (what it shows of the message it answers, as that
        message is now), to the members who may see that message; the others get it without.
        A batch without replies costs nothing more."""
        replies = [(m.channel_id, m.reply_to) for m, _ in deliveries if m.reply_to is not None]
        if not replies:
            return deliveries
        keys = list(dict.fromkeys(replies))
        channels = sorted({c for c, _ in keys})
        found = await asyncio.gather(
            *(self._messages.get_many(c, [i for k, i in keys if k == c]) for c in channels)
        )
        originals = {
            (c, i): m for c, by_id in zip(channels, found, strict=True) for i, m in by_id.items()
        }
        lowest = await self.membership.lowest_visible({c for c, _ in keys})
        out = []
        for message, recipients in deliveries:
            original = (
                None
                if message.reply_to is None
                else originals.get((message.channel_id, message.reply_to))
            )
            if message.reply_to is None or original is None or message.deleted:
                out.append((message, recipients))
                continue
            floors = lowest.get(message.channel_id, {})
            seeing = [u for u in recipients if message.reply_to >= floors.get(u, 1)]
            others = [u for u in recipients if message.reply_to < floors.get(u, 1)]
            out.append((message.model_copy(update={"quote": quote_of(original)}), seeing))
            if others:
                out.append((message, others))
        return out

    async def _publish_stored(
        self, messages: Sequence[Message], spans: dict[SendKey, Span]
    ) -> list[Awaitable[object]]:
        """Each stored row (repeats too: a crash may have come before their first publish) on
        the stored topic under its own key, in its channel's partition so in channel order;
        awaited with the inbox records, so under the same commit (docs/architecture.md (n)).

        The topic is the history's log, compacted by key, so a text a delete removed must
        leave it too: an edit is published as stored (blank when its message was deleted
        first), and a delete is preceded by blank copies of its message and of the message's
        edits, which compaction keeps in place of the originals."""
        assert self._sink is not None
        pending = []
        for message in messages:
            rows = [message]
            if message.kind == "edit":
                stored = await self._messages.get(message.channel_id, message.message_id)
                rows = [stored or message]
            elif message.kind == "delete" and message.target_id is not None:
                blank = await self._messages.deleted_rows(message.channel_id, message.target_id)
                rows = [*blank, message]
            partition = stored_partition(message.channel_id, self._topics.stored_partitions)
            headers = _headers(spans, message)
            for row in rows:
                pending.append(
                    await self._sink.send(
                        self._topics.stored,
                        stored_key(row.channel_id, row.message_id),
                        StoredMessageV1.encode_message(row.encode()),
                        partition,
                        None,
                        headers,
                    )
                )
        return pending

    async def _dead_letter(self, raw: bytes, reason: str) -> None:
        log.error("dead-lettering an event: %s", reason)
        if self._sink is None:
            return
        fut = await self._sink.send(
            self._topics.dead_letter,
            _channel_key(raw),
            raw,
            None,
            None,
            [("x-parley-error", reason.encode())],
        )
        await fut


def _row(event: MessageSendV1 | MessageChangeV1, message_id: int) -> Message:
    """The channel row a send or change becomes under its id."""
    # Validated again, which costs less than pydantic's `model_construct` (~2 µs, not ~9).
    if isinstance(event, MessageSendV1):
        return Message(
            channel_id=event.channel_id,
            message_id=message_id,
            sender_id=event.sender_id,
            sender_device_id=event.sender_device_id,
            client_msg_id=event.client_msg_id,
            text=event.text,
            sent_at=iso_ms(event.sent_at_ms),
            reply_to=None if event.reply_to is None else int(event.reply_to),
        )
    return Message(
        channel_id=event.channel_id,
        message_id=message_id,
        sender_id=event.sender_id,
        sender_device_id=event.sender_device_id,
        client_msg_id=event.client_msg_id,
        text=event.text if event.kind == "edit" else "",
        sent_at=iso_ms(event.sent_at_ms),
        kind=event.kind,
        target_id=int(event.target_id),
        emoji=event.emoji if event.kind == "reaction" else None,
        removed=event.removed if event.kind == "reaction" else False,
    )


def _headers(spans: dict[SendKey, Span], message: Message) -> list[tuple[str, bytes]] | None:
    """The trace context of the message's processing, for the records it becomes."""
    if not spans:
        return None
    return tracing.headers_of(spans.get((message.sender_device_id, message.client_msg_id)))


@functools.lru_cache(maxsize=65_536)
def stored_partition(channel_id: str, partitions: int) -> int:
    """A channel's partition of the stored topic (its records are keyed by row, not channel)."""
    return key_partition(channel_id, partitions)


def _capped(reaction: Message, state: _Reactions) -> Message:
    """The reaction row as stored: an addition beyond the caps is refused, stored as taken back
    with the reason (it changes nothing, and every device is told). `state` (the message's
    reactions before it) becomes the reactions after it."""
    assert reaction.target_id is not None and reaction.emoji is not None
    reactions = state.get((reaction.channel_id, reaction.target_id))
    if reaction.removed and reactions is None:
        return reaction  # a message no addition in the batch names: not judged, not tracked
    assert reactions is not None  # every message an addition names was read
    user, emoji = reaction.sender_id, reaction.emoji
    if not reaction.removed:
        refusal = reaction_refusal(reactions, user, emoji)
        if refusal is not None:
            return reaction.model_copy(update={"removed": True, "refused": refusal})
        reactions.setdefault(emoji, set()).add(user)
    elif user in reactions.get(emoji, ()):
        reactions[emoji].discard(user)
        if not reactions[emoji]:
            del reactions[emoji]
    return reaction


def _pin_capped(change: Message, pinned: _Pins) -> Message:
    """A pin as stored: one of a message not pinned yet, in a channel that has
    MAX_PINS_PER_CHANNEL pinned already, is refused (stored with the reason; it pins nothing,
    and every device is told). `pinned` (the channel's pins before the change: a pin adds, an
    unpin or a delete takes away) becomes the pins after it."""
    assert change.target_id is not None
    pins = pinned.get(change.channel_id)
    if pins is None:
        return change  # a channel no pin of the batch names: not judged, not tracked
    if change.kind != "pin":
        pins.discard(change.target_id)
    elif change.target_id not in pins:
        if len(pins) >= MAX_PINS_PER_CHANNEL:
            return change.model_copy(update={"refused": "pin_limit"})
        pins.add(change.target_id)
    return change


def _channel_key(raw: bytes) -> bytes | None:
    """The channel id of an event, as its dead-letter key, when it can be read at all."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    channel_id = event.get("channel_id") if isinstance(event, dict) else None
    return channel_id.encode() if isinstance(channel_id, str) else None
