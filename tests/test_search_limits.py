"""Search is refused beyond a user's share, with a clear 429, so that one user's searches
cannot take a gateway from everyone else (gateway/search_gate.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import ApiError as ServerApiError
from gateway.search_gate import SearchGate
from parley_client import ApiError
from tests.conftest import Api, extra_gateway
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
