"""Who may search now (SPEC §6 isolation): search is the costliest request a user can make.

A search answer costs milliseconds of work: its snippets (up to 100) in the search's own
process (storage/search/tokeniser.py), and its rows and its JSON on the loop that delivers
everyone's messages. So:
- per user, `search_per_user` searches at a time (one by default), and a token bucket
  (`search_rate_per_s`, `search_burst`);
- per gateway, at most `search_concurrency` searches at once, whoever asks.
A search refused gets 429 `rate_limited` with `Retry-After`; it never waits in a queue.
Those admitted read the index through a pool of their own (`search_pool_size` connections,
storage/stores.py), waiting for one within their deadline (gateway/commands/search.py).
"""

from __future__ import annotations

import contextlib
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator

from gateway import metrics
from gateway.errors import rate_limited
from gateway.metrics import SEARCHES
from gateway.ratelimit import TokenBucket


class SearchGate:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        concurrency: int,
        per_user: int = 1,
        max_users: int = 100_000,
    ) -> None:
        self._rate, self._burst = rate_per_s, burst
        self._per_user = per_user
        self._concurrency = concurrency
        self._max_users = max_users
        # Least recently searching first: a bucket dropped for room is a full one again,
        # which costs at most one burst for a user not seen for that long.
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._searching: Counter[str] = Counter()  # searches in progress, per user

    @contextlib.asynccontextmanager
    async def admit(self, user_id: str) -> AsyncIterator[None]:
        """Hold a place for the user's search, or raise `rate_limited`."""
        if self._searching[user_id] >= self._per_user:
            metrics.SEARCHES_REFUSED.labels("in_progress").inc()
            raise rate_limited("one search at a time: wait for the one in progress", 1)
        bucket = self._bucket(user_id)
        if not bucket.take():
            metrics.SEARCHES_REFUSED.labels("rate").inc()
            raise rate_limited("too many searches; slow down", bucket.wait_s())
        if self._searching.total() >= self._concurrency:
            metrics.SEARCHES_REFUSED.labels("busy").inc()
            raise rate_limited("the server is busy with other searches; try again shortly", 1)
        self._searching[user_id] += 1
        SEARCHES.inc()
        try:
            yield
        finally:
            SEARCHES.dec()
            self._searching[user_id] -= 1
            if not self._searching[user_id]:
                del self._searching[user_id]

    def _bucket(self, user_id: str) -> TokenBucket:
        bucket = self._buckets.pop(user_id, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst)
            if len(self._buckets) >= self._max_users:
                self._buckets.popitem(last=False)
        self._buckets[user_id] = bucket
        return bucket
