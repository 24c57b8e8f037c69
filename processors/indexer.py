"""The search indexer: a consumer of `parley.stored.v1` that writes each stored message to the
search index (docs/architecture.md (n)).

- It never slows delivery: the pipeline publishes a stored message beside its inbox records,
  and only this consumer waits on the index. Nor does its CPU, though it shares the
  processor's event loop with delivery: the index cuts a long text's tokens in a process of
  its own (storage/search/tokeniser.py), at most `MAX_SEARCH_CHARS` normalised characters of a text
  (storage/search/tokens.py), so a batch of huge texts never holds the loop.
- At least once, made one entry by the index: a batch is acknowledged only after the index
  took it, so a crash repeats it, and `SearchIndex.add` keeps one entry per (channel, id).
- A message's later life is on the topic too, in the channel's order: an edit replaces the
  indexed text (of a message still indexed), a delete removes the entry (so does the blank
  copy of a deleted message), a reaction is skipped, and so is a blank edit (a copy that
  forgets an edit's text); so is an event of another type, or one that cannot be read; neither
  holds up the partition. Changes are applied in the batch's order, after the messages before them.
- The same code rebuilds the index from the topic's beginning (`processors/search_rebuild.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from processors.backoff import backoff
from schemas.events import StoredMessageV1, stored_event
from schemas.message import Message
from storage.errors import PermanentStoreError
from storage.protocols import SearchIndex

log = logging.getLogger("parley.indexer")


@dataclass
class IndexResult:
    indexed: int = 0
    skipped: int = 0  # events of other types, or unreadable ones


class SearchIndexer:
    def __init__(self, index: SearchIndex) -> None:
        self._index = index

    async def handle(self, batch: Sequence[bytes]) -> IndexResult:
        """Index a batch of `parley.stored.v1` records; returns once the index holds them
        (retrying with backoff while it is unreachable)."""
        result = IndexResult()
        messages: list[Message] = []
        for raw in batch:
            row = stored_message(raw)
            # A blank edit is the copy of an edit a delete removed (the delete follows).
            # Reactions and pins change no words.
            unworded = row is not None and row.kind in ("reaction", "pin", "unpin")
            if row is None or unworded or (row.kind == "edit" and not row.text):
                result.skipped += 1
            elif row.kind == "message" and not row.deleted:
                messages.append(row)
            else:
                await self._add(messages)  # what came before the change, first
                result.indexed += len(messages)
                messages = []
                await self._change(row)
                result.indexed += 1
        await self._add(messages)
        result.indexed += len(messages)
        return result

    async def _change(self, row: Message) -> None:
        """An edit, a delete, or a message stored deleted (a send seen again after its
        delete)."""
        target = row.message_id if row.kind == "message" else row.target_id
        assert target is not None
        index = self._index

        def change() -> Awaitable[None]:
            if row.kind == "edit":
                return index.edit(row.channel_id, target, row.text)
            return index.remove(row.channel_id, target)

        try:
            await _retrying(row.kind, change)
        except PermanentStoreError as exc:
            log.critical("the search index refuses a %s for good: %r", row.kind, exc)

    async def _add(self, messages: list[Message]) -> None:
        if not messages:
            return
        try:
            await _retrying(f"{len(messages)} messages", lambda: self._index.add(messages))
        except PermanentStoreError as exc:
            if len(messages) <= 1:
                # The pipeline stored it, so it can be stored; an index that refuses it
                # for good leaves it unsearchable rather than stopping the partition.
                log.critical("the search index refuses a message for good: %r", exc)
                return
            for message in messages:
                await self._add([message])


async def _retrying(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run `attempt` until it succeeds, with backoff while the index fails in a way that may
    pass (nothing is acknowledged meanwhile: the batch waits); a PermanentStoreError is
    raised at once."""
    attempts = 0
    while True:
        try:
            await attempt()
            return
        except PermanentStoreError:
            raise
        except Exception as exc:
            delay = backoff(attempts)
            log.warning("indexing %s failed, retrying in %.2fs: %r", what, delay, exc)
            await asyncio.sleep(delay)
            attempts += 1


def stored_message(raw: bytes) -> Message | None:
    """The message of a `message.stored` event; None for any other type (logged at debug)
    or an unreadable record (logged as an error)."""
    try:
        head = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.error("skipping a record of parley.stored.v1 that is not JSON")
        return None
    kind = head.get("type") if isinstance(head, dict) else None
    if kind != StoredMessageV1.model_fields["type"].default:
        log.debug("skipping an event of type %r", kind)
        return None
    try:
        return stored_event.validate_python(head).message
    except ValidationError as exc:
        log.error("skipping an unreadable message.stored: %s", str(exc).splitlines()[0])
        return None
