"""The new rows of several partitions' batches, written in one store call
(processors/joined_inserts.py), on the real Postgres store: each caller gets the answer it would
have had alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from processors.joined_inserts import JoinedInserts
from schemas.ids import id_floor, now_ms
from schemas.message import Message
from schemas.settings import Settings
from storage.errors import PermanentStoreError
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.pool import Pool, open_pool
from tests.conftest import migrated_database
from tests.test_storage_contract import fresh, message

ALONE_CHARS = 1_000


class CountedStore(PostgresMessageStore):
    """The Postgres store, recording the rows of each `insert_new` call it gets."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.calls: list[int] = []

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        self.calls.append(len(messages))
        return await super().insert_new(messages)


@pytest.fixture(scope="module")
def joined_dsn(postgres_dsn: str) -> str:
    return migrated_database(postgres_dsn, "joined")


@pytest.fixture
async def store(joined_dsn: str) -> AsyncIterator[CountedStore]:
    pool = await open_pool(Settings(postgres_dsn=joined_dsn))
    counted = CountedStore(pool)
    try:
        yield counted
    finally:
        await pool.close()


def batch(size: int = 2, text: str | None = None) -> list[Message]:
    channel, first = fresh(), id_floor(now_ms())
    return [message(channel, first + i, text=text) for i in range(size)]


async def stored(store: PostgresMessageStore, rows: list[Message]) -> bool:
    found = await store.find_sent([(m.sender_device_id, m.client_msg_id) for m in rows])
    return len(found) == len(rows)


async def test_the_batches_of_one_turn_are_one_store_call(store: CountedStore) -> None:
    inserts = JoinedInserts(store, ALONE_CHARS)
    batches = [batch(), batch(3), batch(1)]
    answers = await asyncio.gather(*(inserts.insert_new(rows) for rows in batches))
    assert answers == [True, True, True]
    assert store.calls == [6]
    assert all([await stored(store, rows) for rows in batches])


async def test_a_batch_holding_a_repeat_gets_false_and_the_others_are_stored(
    store: CountedStore,
) -> None:
    inserts = JoinedInserts(store, ALONE_CHARS)
    repeat, new = batch(), batch()
    assert await store.insert_new(repeat[:1])
    store.calls.clear()
    answers = await asyncio.gather(inserts.insert_new(repeat), inserts.insert_new(new))
    assert answers == [False, True]
    assert store.calls == [4, 2, 2]  # joined, then each alone
    assert await stored(store, new)
    found = await store.find_sent([(m.sender_device_id, m.client_msg_id) for m in repeat])
    assert list(found) == [(repeat[0].sender_device_id, repeat[0].client_msg_id)]


async def test_a_batch_the_store_refuses_gets_the_error_and_the_others_are_stored(
    store: CountedStore,
) -> None:
    inserts = JoinedInserts(store, ALONE_CHARS)
    good = batch()
    bad = [Message.model_construct(**{**batch(1)[0].model_dump(), "message_id": 2**63})]
    answers = await asyncio.gather(
        inserts.insert_new(bad), inserts.insert_new(good), return_exceptions=True
    )
    assert isinstance(answers[0], PermanentStoreError)
    assert answers[1] is True
    assert await stored(store, good)


async def test_a_batch_of_long_texts_is_written_alone_at_once(store: CountedStore) -> None:
    inserts = JoinedInserts(store, ALONE_CHARS)
    long, short = batch(2, "x" * (ALONE_CHARS // 2)), batch()
    answers = await asyncio.gather(inserts.insert_new(long), inserts.insert_new(short))
    assert answers == [True, True]
    assert store.calls == [2, 2]


async def test_a_cancelled_caller_leaves_the_write_to_the_others(store: CountedStore) -> None:
    inserts = JoinedInserts(store, ALONE_CHARS)
    gone, kept = batch(), batch()
    first = asyncio.ensure_future(inserts.insert_new(gone))

    async def second() -> bool:
        first.cancel()  # tasks start in order: the first has called and waits for its answer
        return await inserts.insert_new(kept)

    assert await asyncio.ensure_future(second()) is True
    assert first.cancelled()
    assert store.calls == [4]
    assert await stored(store, kept)
