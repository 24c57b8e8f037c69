"""What a reply shows of the message it answers (its `quote`): read with the reply, never
stored with it, so it follows the message's edits and becomes a tombstone once the message is
deleted (a deleted message's words never live on in its replies), and a replay of the history
rebuilds nothing of it. Every reader fills it in: history, threads and sync here, live
deliveries in the pipeline (processors/pipeline.py `_quoted`)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.message import Message, quote_of
from storage.protocols.messages import MessageStore


async def quoted(store: MessageStore, rows: Sequence[Message], lowest: int) -> list[Message]:
    """One channel's `rows`, each living reply with the quote of the message it answers, if
    the reader may see that message (its id is at least `lowest`: storage/visibility.py)."""
    wanted = sorted(
        {
            m.reply_to
            for m in rows
            if m.reply_to is not None and m.reply_to >= lowest and not m.deleted
        }
    )
    if not wanted:
        return list(rows)
    originals = await store.get_many(rows[0].channel_id, wanted)
    out = []
    for m in rows:
        original = None if m.reply_to is None or m.deleted else originals.get(m.reply_to)
        out.append(m if original is None else m.model_copy(update={"quote": quote_of(original)}))
    return out
