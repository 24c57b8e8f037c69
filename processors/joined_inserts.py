"""The new rows of a processor's partitions, written to the message store together.

Each partition of `parley.messages.v1` runs its own batches (processors/consumer.py), and
each batch of new sends is one store round trip (`MessageStore.insert_new`). Under load the
batches of several partitions reach the store in the same turn of the loop, each a handful of
rows: one statement for all of them costs the store one commit instead of one each, and the
processor one round trip. `JoinedInserts.insert_new` gathers the calls made in one turn and
writes them as one.

Each caller still gets its own answer, as if it had called the store alone: when the joined
write fails or finds a send stored already (the store then stored nothing of it), every
caller's rows are written again on their own, so a partition whose batch the store refuses,
or that holds a repeat, gets its error or its False, and the others are stored. A batch
holding a huge text (the heavy lane's) is written alone at once: the others never wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from schemas.message import Message
from storage.protocols import MessageStore


class JoinedInserts:
    def __init__(self, store: MessageStore, alone_chars: int) -> None:
        """`alone_chars`: a call whose rows hold this many characters of text or more is
        written alone, at once."""
        self._store = store
        self._alone_chars = alone_chars
        self._waiting: list[tuple[Sequence[Message], asyncio.Future[bool]]] = []
        self._writing: set[asyncio.Task[None]] = set()

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        """`MessageStore.insert_new(messages)`, joined with the calls of this turn."""
        if sum(len(m.text) for m in messages) >= self._alone_chars:
            return await self._store.insert_new(messages)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((messages, answer))
        if len(self._waiting) == 1:
            # After the batches that are ready in this turn have called too.
            loop.call_soon(self._write)
        # A caller cancelled (its partition revoked) leaves the write to go on for the others.
        return await answer

    def _write(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._joined(waiting))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _joined(self, waiting: list[tuple[Sequence[Message], asyncio.Future[bool]]]) -> None:
        try:
            await self._answer(waiting)
        finally:
            for _, answer in waiting:
                answer.cancel()  # the write itself was cancelled (the worker stops): no answer

    async def _answer(self, waiting: list[tuple[Sequence[Message], asyncio.Future[bool]]]) -> None:
        if len(waiting) > 1:
            try:
                stored = await self._store.insert_new([m for rows, _ in waiting for m in rows])
            except Exception:
                stored = False  # each alone, below: the one at fault gets the error
            if stored:
                for _, answer in waiting:
                    if not answer.done():
                        answer.set_result(True)
                return
        alone = await asyncio.gather(
            *(self._store.insert_new(rows) for rows, _ in waiting), return_exceptions=True
        )
        for (_, answer), result in zip(waiting, alone, strict=True):
            if answer.done():
                continue
            if isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)
