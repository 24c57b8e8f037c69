"""The gateway's membership cache on its own (gateway/memberships.py), against a store whose
reads the test holds open: what is cached, for whom, for how long, and that a read begun
before an invalidation never fills the cache with what it read. And the processors' notifier,
the other reader of the inbox topic, skips its event."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from gateway.inbox import InboxDispatcher
from gateway.memberships import MembershipCache
from processors.notifier import Notified, Notifier, NotifierConfig
from schemas.events import InboxMembershipV1, inbox_event
from storage.protocols import ChannelStore, Membership


class FakeStore:
    """`membership` answers from `rows`; while `gate` is set, each read waits for it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Membership] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def membership(self, channel_id: str, user_id: str) -> Membership | None:
        self.reads += 1
        found = self.rows.get((channel_id, user_id))
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_of(store: FakeStore, clock: Clock | None = None, entries: int = 100) -> MembershipCache:
    fake: ChannelStore = store  # type: ignore[assignment]  # only `membership` is used
    return MembershipCache(fake, ttl_s=30.0, max_entries=entries, clock=clock or Clock())


def member(channel_id: str, role: str = "member", blocked: bool = False) -> Membership:
    return Membership(channel_id, 1, role, blocked)  # type: ignore[arg-type]


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_watched_users_membership_is_read_once_then_served_from_memory() -> None:
    store = FakeStore()
    store.rows["c1", "u1"] = member("c1")
    cache = cache_of(store)
    cache.watch("u1")
    hits = counter("parley_gateway_membership_cache_hits_total")
    misses = counter("parley_gateway_membership_cache_misses_total")
    for _ in range(3):
        assert await cache.get("c1", "u1") == member("c1")
    assert store.reads == 1
    assert counter("parley_gateway_membership_cache_hits_total") == hits + 2
    assert counter("parley_gateway_membership_cache_misses_total") == misses + 1
    # `fresh` reads the store even so (a refusal is judged on the store).
    assert await cache.get("c1", "u1", fresh=True) == member("c1")
    assert store.reads == 2


async def test_refusals_and_unwatched_users_are_never_cached() -> None:
    store = FakeStore()
    store.rows["dm", "u1"] = member("dm", blocked=True)
    store.rows["c1", "u2"] = member("c1")
    cache = cache_of(store)
    cache.watch("u1")
    for _ in range(2):
        assert await cache.get("c9", "u1") is None  # not a member: read every time
        assert (await cache.get("dm", "u1") or member("x")).blocked  # blocked: likewise
        assert await cache.get("c1", "u2") == member("c1")  # no socket of u2 here
    assert store.reads == 6
    assert len(cache) == 0


async def test_an_invalidation_drops_the_named_users_entries() -> None:
    store = FakeStore()
    for user in ("u1", "u2"):
        for channel in ("c1", "c2"):
            store.rows[channel, user] = member(channel)
    cache = cache_of(store)
    for user in ("u1", "u2"):
        cache.watch(user)
        for channel in ("c1", "c2"):
            await cache.get(channel, user)
    assert len(cache) == 4
    cache.invalidate(["u1"], "c1")  # one channel of one user
    assert len(cache) == 3
    del store.rows["c1", "u1"]
    assert await cache.get("c1", "u1") is None
    cache.invalidate(["u2", "nobody-here"], None)  # every channel (a block)
    assert len(cache) == 1
    assert await cache.get("c2", "u1") == member("c2")  # still cached
    assert store.reads == 5


async def test_the_inbox_dispatcher_applies_membership_events() -> None:
    store = FakeStore()
    store.rows["c1", "u1"] = member("c1")
    cache = cache_of(store)
    cache.watch("u1")
    await cache.get("c1", "u1")
    dispatch = InboxDispatcher(registry=None, memberships=cache)  # type: ignore[arg-type]
    dispatch(InboxMembershipV1(user_ids=["u1"], channel_id="c1").encode())
    assert len(cache) == 0


async def test_a_read_begun_before_an_invalidation_does_not_fill_the_cache() -> None:
    store = FakeStore()
    store.rows["c1", "u1"] = member("c1")
    cache = cache_of(store)
    cache.watch("u1")
    store.gate = asyncio.Event()
    read = asyncio.create_task(cache.get("c1", "u1"))
    await store.reading.wait()
    # The member is removed and the event applied while the read (of the old row) is out.
    del store.rows["c1", "u1"]
    cache.invalidate(["u1"], "c1")
    store.gate.set()
    assert await read == member("c1")  # this check saw the row as it was when read
    assert len(cache) == 0  # but it is not kept
    store.gate = None
    assert await cache.get("c1", "u1") is None


async def test_a_user_who_left_and_came_back_starts_empty() -> None:
    store = FakeStore()
    store.rows["c1", "u1"] = member("c1")
    cache = cache_of(store)
    cache.watch("u1")
    cache.watch("u1")  # two sockets
    await cache.get("c1", "u1")
    cache.unwatch("u1")
    assert len(cache) == 1  # one socket is still here
    store.gate = asyncio.Event()
    store.reading.clear()
    read = asyncio.create_task(cache.get("c1", "u1", fresh=True))
    await store.reading.wait()
    cache.unwatch("u1")  # the last socket goes while a read is out...
    assert len(cache) == 0
    cache.watch("u1")  # ...and the user comes back: events missed meanwhile are not known
    store.gate.set()
    await read
    assert len(cache) == 0


async def test_entries_expire_after_the_ttl_and_the_oldest_go_first() -> None:
    store = FakeStore()
    clock = Clock()
    cache = cache_of(store, clock, entries=2)
    cache.watch("u1")
    for channel in ("c1", "c2", "c3"):
        store.rows[channel, "u1"] = member(channel)
    await cache.get("c1", "u1")
    await cache.get("c2", "u1")
    await cache.get("c1", "u1")  # c1 used last: c2 is the least recently used
    await cache.get("c3", "u1")
    assert len(cache) == 2 and store.reads == 3
    await cache.get("c1", "u1")
    assert store.reads == 3
    await cache.get("c2", "u1")  # evicted: read again
    assert store.reads == 4
    clock.now += 31  # past the TTL: read again, in case an event was lost
    await cache.get("c2", "u1")
    assert store.reads == 5


async def test_the_notifier_skips_membership_events() -> None:
    raw = InboxMembershipV1(user_ids=["u1", "u2"], channel_id=None).encode()
    assert isinstance(inbox_event.validate_json(raw), InboxMembershipV1)
    # No store is touched (they are None): nothing in the batch is a message to push.
    config = NotifierConfig(coalesce_ms=0, max_age_ms=60_000, preview_chars=10, concurrency=1)
    notifier = Notifier(None, None, None, None, None, config)  # type: ignore[arg-type]
    assert await notifier.handle([raw]) == Notified(0, 0)
