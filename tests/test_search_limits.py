"""Search is refused beyond a user's share, with a clear 429, so that one user's searches
cannot take a gateway from everyone else (gateway/search_gate.py); the searches admitted read
the index through a pool of their own, all of a search within one deadline
(gateway/commands/search.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import psycopg
import pytest

from gateway.errors import ApiError as ServerApiError
from gateway.search_gate import SearchGate
from parley_client import ApiError, Client
from storage.search import tokeniser
from tests.conftest import Api, eventually, extra_gateway, metric
from tests.stack import Stack

# The defaults of schemas/settings.py: the suite's stack loosens them for tests that poll.
DEFAULT_LIMITS = {
    "PARLEY_SEARCH_RATE_PER_S": "1",
    "PARLEY_SEARCH_BURST": "5",
    "PARLEY_SEARCH_CONCURRENCY": "4",
    "PARLEY_SEARCH_PER_USER": "1",
}


async def test_a_user_searching_past_the_burst_gets_rate_limited_and_others_do_not(
    stack: Stack,
) -> None:
    async with (
        extra_gateway(stack, **DEFAULT_LIMITS) as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        greedy, other = await api.new_device("sg"), await api.new_device("so")
        for _ in range(5):
            assert (await api.search(greedy, "anything"))["results"] == []
        with pytest.raises(ApiError) as refused:
            await api.search(greedy, "anything")
        assert refused.value.status == 429
        assert refused.value.code == "rate_limited"
        assert refused.value.retry_after_s is not None and refused.value.retry_after_s >= 1
        # Another user's searches are theirs to spend.
        assert (await api.search(other, "anything"))["results"] == []
        # A query refused as invalid costs no share: it is judged first, and clearly.
        with pytest.raises(ApiError) as bad:
            await api.search(greedy, "")
        assert (bad.value.status, bad.value.code) == (422, "invalid")


async def test_one_search_at_a_time_per_user_and_a_cap_per_gateway() -> None:
    gate = SearchGate(rate_per_s=1000, burst=1000, concurrency=2)
    async with gate.admit("a"):
        with pytest.raises(ServerApiError) as again:
            async with gate.admit("a"):
                pass
        assert again.value.code == "rate_limited"
        async with gate.admit("b"):
            with pytest.raises(ServerApiError) as busy:
                async with gate.admit("c"):
                    pass
            assert busy.value.status == 429
    # Places are given back: everyone may search again.
    for user in ("a", "b", "c"):
        async with gate.admit(user):
            await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def index_locked(dsn: str) -> AsyncIterator[None]:
    """Every search of the index waits in Postgres while this lasts: the test holds the
    index's table locked (as a slow migration or a stuck statement would)."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        await conn.execute("LOCK TABLE search_entries IN ACCESS EXCLUSIVE MODE")
        yield


async def waiting_searches(dsn: str) -> int:
    """Search statements waiting in Postgres for the index's table."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            " AND wait_event_type = 'Lock' AND query LIKE '%FROM search_entries e%'"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


SEARCHERS = 10
SEARCH_POOL = 2


async def test_searches_held_in_postgres_take_only_their_own_pool_and_others_are_served(
    stack: Stack,
) -> None:
    """Ten searches stuck in Postgres fill the gateway's search cap and its search pool (two
    connections): other users still log in, list their channels, read history, say hello
    and send and receive, all while every search waits. Let go, every search answers."""
    dsn = stack.settings.postgres_dsn
    limits = {
        "PARLEY_SEARCH_CONCURRENCY": str(SEARCHERS),
        "PARLEY_SEARCH_POOL_SIZE": str(SEARCH_POOL),
        "PARLEY_SEARCH_DEADLINE_S": "120",  # they wait for the test, not for a deadline
        "PARLEY_POSTGRES_POOL_MAX": str(SEARCHERS),  # as many as searches may be at once
    }
    async with (
        extra_gateway(stack, **limits) as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        peer = await api.new_device("sp")
        searchers = [await api.new_device("ss") for _ in range(SEARCHERS)]
        for searcher in searchers:
            await api.direct(searcher, peer.user_id)  # a channel to search
        alice, bob = await api.new_device("sa"), await api.new_user("sb")
        channel = await api.direct(alice, (await api.add_device(bob)).user_id)

        async with index_locked(dsn):
            searches = [asyncio.create_task(api.search(s, "anything")) for s in searchers]

            async def all_waiting() -> bool:
                admitted = await metric(gateway.url, "parley_gateway_searches")
                return admitted == SEARCHERS and await waiting_searches(dsn) == SEARCH_POOL

            await eventually(all_waiting, 30, "every search admitted, the pool's two waiting")
            with pytest.raises(ApiError) as busy:  # the cap is full: refused, not queued
                await api.search(alice, "anything")
            assert (busy.value.status, busy.value.code) == (429, "rate_limited")

            again = await api.add_device(bob)  # POST /v1/sessions
            assert [c["channel_id"] for c in await api.channels(alice)] == [channel]
            async with (
                await api.connect(alice) as sender,  # hello, the sync
                await api.connect(again) as receiver,
            ):
                await sender.accepted(await sender.send_message(channel, "while they wait"))
                (delivered,) = await receiver.collect_messages(channel, 1)
                assert delivered["text"] == "while they wait"
            assert isinstance(await api.history(again, channel), list)
            assert not any(search.done() for search in searches)
            assert await waiting_searches(dsn) == SEARCH_POOL

        for answer in await asyncio.gather(*searches):
            assert answer == {"results": [], "next_before": None}


async def refusals(url: str) -> dict[str, float]:
    """`parley_gateway_searches_refused_total` of the gateway at `url`, by reason."""
    async with Client(url) as client:
        text = await client.metrics()
    found = re.findall(
        r'^parley_gateway_searches_refused_total\{reason="(\w+)"\} (\S+)$', text, re.M
    )
    return {reason: float(value) for reason, value in found}


async def _timed(call: Awaitable[Any]) -> tuple[ApiError, float]:
    """The error `call` ends with, and after how many seconds."""
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        await call
    return refused.value, time.monotonic() - started


async def test_a_search_has_one_deadline_for_all_of_it_and_leaves_nothing_running(
    stack: Stack,
) -> None:
    """With one connection for searches, held by a search stuck in Postgres, a second search
    waits for it and then for its own statement: both answer by their own deadline (not one
    per wait), with a clear error; their statements are cancelled in Postgres, and the
    connection serves the next search."""
    dsn = stack.settings.postgres_dsn
    deadline_s = 6.0
    limits = {"PARLEY_SEARCH_POOL_SIZE": "1", "PARLEY_SEARCH_DEADLINE_S": str(deadline_s)}
    async with (
        extra_gateway(stack, **limits) as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        peer = await api.new_device("sp")
        first, second, third = [await api.new_device("sd") for _ in range(3)]
        for searcher in (first, second, third):
            await api.direct(searcher, peer.user_id)

        async with index_locked(dsn):
            holding = asyncio.create_task(_timed(api.search(first, "anything")))

            async def one_waiting() -> bool:
                return await waiting_searches(dsn) == 1

            await eventually(one_waiting, 30, "the first search waiting in Postgres")
            (held, held_s), (queued, queued_s) = await asyncio.gather(
                holding, _timed(api.search(second, "anything"))
            )
            assert (held.status, held.code) == (422, "too_broad")
            assert held.message == "the search took too long: add words or give a channel_id"
            # Waiting for the connection, then for the statement: still one deadline. It ran
            # out in one or the other (the connection came back with little time left).
            assert (queued.status, queued.code) in {(422, "too_broad"), (429, "rate_limited")}
            # A deadline per wait would give the queued search two (12 s): half a deadline of
            # slack for a busy machine still tells them apart.
            assert deadline_s <= held_s < deadline_s * 1.5
            assert queued_s < deadline_s * 1.5
            # Cancelled in Postgres before the answers: nothing of theirs is left running.
            assert await waiting_searches(dsn) == 0
            # Each refusal counted by its reason (the dashboard and alerts of infra/).
            refused = await refusals(gateway.url)
            assert refused["too_broad"] >= 1 and refused["too_broad"] + refused["pool"] == 2

        assert await api.search(third, "anything") == {"results": [], "next_before": None}


async def test_snippets_stop_at_the_search_deadline() -> None:
    far, past = time.monotonic() + 60, time.monotonic() - 1
    assert await tokeniser.snip(["a needle"], ["needle"], far) == [
        [("a ", False), ("needle", True)]
    ]
    for texts in (["a needle"], ["a needle " * 1_000]):  # on the loop; in the search's process
        with pytest.raises(TimeoutError):
            await tokeniser.snip(texts, ["needle"], past)
