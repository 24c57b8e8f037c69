"""Rebuilds the message store from `parley.stored.v1`, the history's log (SPEC §5, Replay).

The log holds every stored row with its id, so a rebuild gives the same rows and the same ids
whatever order the records come in. It reads the topic twice, each time from every partition's
beginning up to its end: first the messages, then the changes to them, in id order within each
batch. A change is applied only to a stored message, and compaction may have moved a row after
its changes (a blank copy after a delete, or a repeat of a row after a processor crash), so
every message is stored before any change is applied. Into an empty store it writes the rows the
live pipeline wrote; over a store that has them it changes nothing (inserts are idempotent).
A deleted message comes back as its tombstone: its delete is in the log, and its texts are not
(docs/operations.md, "Forgetting deleted texts").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from processors.indexer import stored_message
from schemas.message import Message
from schemas.settings import Settings
from storage.protocols import MessageStore
from storage.stores import open_stores
from topics.definitions import stored_topic
from topics.log import Handle, Progress, read_log


async def replay(settings: Settings, progress: Progress | None = None) -> int:
    """Rebuild the configured message store from the stored topic; returns the records read
    (each record is read twice: counted once)."""
    stores = await open_stores(settings)
    topic = stored_topic(settings).name
    try:
        read = await read_log(
            settings, topic, _inserting(stores.messages, lambda m: m.kind == "message"), progress
        )
        await read_log(settings, topic, _inserting(stores.messages, lambda m: m.kind != "message"))
        return read
    finally:
        await stores.close()


def _inserting(store: MessageStore, wanted: Callable[[Message], bool]) -> Handle:
    async def insert(batch: Sequence[bytes]) -> None:
        rows = [m for raw in batch if (m := stored_message(raw)) is not None and wanted(m)]
        await store.insert(sorted(rows, key=lambda m: m.message_id))

    return insert
