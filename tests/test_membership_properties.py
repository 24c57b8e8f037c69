"""Properties of the membership caches, over any interleaving of store changes, the events that
announce them, sockets coming and going, the clock, and reads under way:

- the gateway's (gateway/memberships.py): a membership read is the store's, or an acceptance
  the store held since the last event for it (an event lost or not yet arrived: the stated
  staleness); never a cached refusal, never a stale answer to a `fresh` read, never more than
  `max_entries` entries, nothing kept for a user without a socket here;
- the processors' (processors/membership.py): a channel's members are the last list set or
  read, re-read after `ttl_s`, and never more channels than its bound.

The stores are small in-memory stand-ins: the class under test is the cache."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.memberships import MembershipCache
from processors.membership import MembershipCache as ChannelMembers
from storage.protocols import Membership

USERS = ["u1", "u2"]
CHANNELS = ["a", "b"]
MAX_ENTRIES = 3
TTL_S = 10.0

VALUES: list[Membership | None] = [
    None,
    Membership("-", 0, "member"),
    Membership("-", 0, "admin"),
    Membership("-", 0, "member", blocked=True),
]
MEMBER = 1  # every user starts a member of every channel

# Actions that may also happen while a read is under way.
background = st.one_of(
    st.tuples(st.just("watch"), st.sampled_from(USERS)),
    st.tuples(st.just("unwatch"), st.sampled_from(USERS)),
    st.tuples(
        st.just("change"),
        st.sampled_from(USERS),
        st.sampled_from(CHANNELS),
        st.integers(0, len(VALUES) - 1),
        st.booleans(),  # its event arrives now (else later with "event", or never)
    ),
    st.tuples(st.just("event"), st.sampled_from(USERS), st.sampled_from([*CHANNELS, None])),
    st.tuples(st.just("tick"), st.sampled_from([0.0, 0.0, 1.0, 4.0, 11.0])),
)


def _read(key: tuple[str, str]) -> st.SearchStrategy[tuple[Any, ...]]:
    user, channel = key
    # While the store is read: anything, or a change of this very membership.
    this = st.tuples(
        st.just("change"),
        st.just(user),
        st.just(channel),
        st.integers(0, len(VALUES) - 1),
        st.booleans(),
    )
    return st.tuples(
        st.just("get"),
        st.just(user),
        st.just(channel),
        st.sampled_from([False, False, False, True]),  # fresh
        st.lists(st.one_of(background, this), max_size=2),
        st.booleans(),  # read again right after
    )


reads = st.tuples(st.sampled_from(USERS), st.sampled_from(CHANNELS)).flatmap(_read)

# Sockets first, then reads about as often as everything else.
scripts = st.tuples(
    st.lists(st.tuples(st.just("watch"), st.sampled_from(USERS)), min_size=1, max_size=3),
    st.lists(st.one_of(background, reads, reads), min_size=20, max_size=80),
).map(lambda parts: [*parts[0], *parts[1]])


class World:
    def __init__(self) -> None:
        self.now = 0.0
        self.rows: dict[tuple[str, str], int] = {}  # (user, channel) -> index in VALUES
        self.sockets = dict.fromkeys(USERS, 0)
        # Per (user, channel), the acceptances the store held since the last event for it (or
        # since the user's first socket here): what a read may answer beside the store's.
        self.stale: dict[tuple[str, str], set[int]] = {
            (u, c): set() for u in USERS for c in CHANNELS
        }
        self.during: deque[tuple[Any, ...]] = deque()
        self.reading = False
        self.cache = MembershipCache(self, TTL_S, MAX_ENTRIES, clock=lambda: self.now)  # type: ignore[arg-type]

    async def membership(self, channel_id: str, user_id: str) -> Membership | None:
        found = VALUES[self.rows.get((user_id, channel_id), MEMBER)]
        while self.during:  # the read is under way
            self.act(self.during.popleft())
        return found

    def reset(self, user: str, channels: Iterable[str]) -> None:
        for channel in channels:
            self.stale[user, channel] = set()

    def act(self, action: tuple[Any, ...]) -> None:
        kind, *args = action
        if kind == "watch":
            self.sockets[args[0]] += 1
            self.cache.watch(args[0])
            if self.sockets[args[0]] == 1:
                self.reset(args[0], CHANNELS)
        elif kind == "unwatch":
            if self.sockets[args[0]] > 0:
                self.sockets[args[0]] -= 1
                self.cache.unwatch(args[0])
                if self.sockets[args[0]] == 0:
                    self.reset(args[0], CHANNELS)
        elif kind == "change":
            user, channel, value, announced = args
            old = self.rows.get((user, channel), MEMBER)
            self.rows[user, channel] = value
            accepted = VALUES[old] is not None and not VALUES[old].blocked  # type: ignore[union-attr]
            if self.sockets[user] and accepted:
                self.stale[user, channel].add(old)
            if announced:
                self.act(("event", user, channel))
        elif kind == "event":
            user, channel = args
            if self.sockets[user]:  # the inbox of users with no socket here is not followed
                self.cache.invalidate([user], channel)
                self.reset(user, CHANNELS if channel is None else [channel])
        elif kind == "tick":
            self.now += args[0]
            if args[0] > TTL_S and not self.reading:  # every entry filled before is out of date
                for key in self.stale:
                    self.stale[key] = set()
        assert len(self.cache) <= MAX_ENTRIES

    def get(
        self, user: str, channel: str, fresh: bool, during: list[tuple[Any, ...]], again: bool
    ) -> None:
        # The answer comes from the cache or the store as they are when the read begins.
        allowed = {self.rows.get((user, channel), MEMBER)}
        if not fresh:
            allowed |= self.stale[user, channel]
        self.during.extend(during)
        self.reading = True
        found = asyncio.run(self.cache.get(channel, user, fresh))
        self.reading = False
        self.during.clear()
        assert VALUES.index(found) in allowed, "neither the store's answer nor a stated staleness"
        assert len(self.cache) <= MAX_ENTRIES
        if again:
            self.get(user, channel, False, [], False)


@settings(max_examples=600, deadline=None)
@given(scripts)
def test_gateway_cache_answers_the_store_or_an_acceptance_not_yet_announced(
    script: list[tuple[Any, ...]],
) -> None:
    world = World()
    for action in script:
        if action[0] == "get":
            world.get(*action[1:])
        else:
            world.act(action)
    for user in USERS:
        while world.sockets[user]:
            world.act(("unwatch", user))
    assert len(world.cache) == 0, "entries kept for users with no socket here"


class Lists:
    """The channel store the processors read members from; counts reads."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {}
        self.reads: list[str] = []

    async def members(self, channel_ids: list[str]) -> dict[str, list[str]]:
        self.reads.extend(channel_ids)
        return {c: list(self.lists[c]) for c in channel_ids if c in self.lists}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("store"), st.sampled_from([*CHANNELS, "c"]), st.sampled_from(USERS)),
            st.tuples(st.just("set"), st.sampled_from([*CHANNELS, "c"]), st.sampled_from(USERS)),
            st.tuples(st.just("load"), st.lists(st.sampled_from([*CHANNELS, "c"]), max_size=3)),
            st.tuples(st.just("tick"), st.floats(min_value=0, max_value=15)),
        ),
        max_size=60,
    )
)
def test_processor_cache_holds_the_last_list_until_its_ttl(script: list[tuple[Any, ...]]) -> None:
    import processors.membership as module

    store = Lists()
    now = [1000.0]
    cache = ChannelMembers(store, TTL_S, max_channels=2)  # type: ignore[arg-type]
    expected: dict[str, tuple[list[str], float]] = {}  # channel -> (members, read again at)
    real_monotonic = module.time.monotonic
    module.time.monotonic = lambda: now[0]  # type: ignore[assignment]
    try:
        for action in script:
            kind, *args = action
            if kind == "store":  # committed; its event may come later, or never
                store.lists[args[0]] = [*store.lists.get(args[0], []), args[1]]
            elif kind == "set":  # the event of a change, in the channel's stream
                store.lists[args[0]] = [*store.lists.get(args[0], []), args[1]]
                cache.set(args[0], list(store.lists[args[0]]))
                expected[args[0]] = (list(store.lists[args[0]]), now[0] + TTL_S)
            elif kind == "tick":
                now[0] += args[0]
            else:
                store.reads.clear()
                asyncio.run(cache.load(args[0]))
                for channel in set(args[0]):
                    held = expected.get(channel)
                    if held is not None and held[1] > now[0] and channel not in store.reads:
                        assert cache.members(channel) == held[0], "a list lost before its ttl"
                    else:
                        assert channel in store.reads, "a list kept past its ttl, or never read"
                        assert cache.members(channel) == store.lists.get(channel, [])
                        expected[channel] = (cache.members(channel), now[0] + TTL_S)
                if store.reads:  # a load that read makes room: its channels, or its bound
                    assert len(cache._members) <= max(2, len(set(args[0]))), "past its bound"
    finally:
        module.time.monotonic = real_monotonic  # type: ignore[assignment]
