"""The memberships a gateway's sockets write with, kept in memory so that a send (or an edit,
delete, reaction, typing) costs no database read.

A gateway checks membership only for users connected to it, and it already follows those
users' inbox partitions (gateway/follower.py). Every command that changes a membership
publishes `inbox.membership` to the inbox partition of each user it changed, after its commit
(gateway/publisher.py); the inbox dispatcher hands it to `invalidate`. So an entry is kept
current by the stream, and read again from the store after `ttl_s` in case an event was lost
between a commit and its publish (a gateway that crashed in between).

What is cached, and what is not:
- Only users with a socket here (`watch` / `unwatch`, beside the inbox follower's): nobody else
  has their partition followed, so nobody else's entries would be kept current. A user's
  entries start empty when their first socket arrives and go with their last one.
- Only a membership that lets its user write. A refusal (not a member, a block in a direct
  channel) is read from the store every time, so a user just added or unblocked is accepted
  at once on every gateway; only an acceptance can be stale, by the time an event takes to
  reach this gateway (docs/architecture.md (e), "Membership on the gateway").
- At most `max_entries`, least recently used out first.

Races: a store read that began before an invalidation of its user must not fill the cache
with what it read (the row may have changed after the read). Each watched user has a
generation, bumped by every invalidation of theirs; a read fills only if the generation (and
the watch itself: a user who left and came back is a new watch) is the one it began with.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from gateway import metrics
from storage.protocols import ChannelStore, Membership


class _Watch:
    """One user's watch: sockets here, a generation, and the channels cached."""

    __slots__ = ("channels", "generation", "sockets")

    def __init__(self) -> None:
        self.sockets = 0
        self.generation = 0
        self.channels: set[str] = set()


class MembershipCache:
    def __init__(
        self,
        store: ChannelStore,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        # (user_id, channel_id) -> (membership, when it expires), least recently used first.
        self._entries: OrderedDict[tuple[str, str], tuple[Membership, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, user_id: str) -> None:
        """A socket of the user is here, and the user's inbox partition is followed (call it
        after the follower's `watch` returned: from then on every event for the user is seen)."""
        watch = self._watches.get(user_id)
        if watch is None:
            watch = self._watches[user_id] = _Watch()
        watch.sockets += 1

    def unwatch(self, user_id: str) -> None:
        """One of the user's sockets here closed; with the last one, their entries go."""
        watch = self._watches.get(user_id)
        if watch is None:
            return
        watch.sockets -= 1
        if watch.sockets <= 0:
            self._forget(user_id, watch, None)
            del self._watches[user_id]

    def invalidate(self, user_ids: Iterable[str], channel_id: str | None) -> None:
        """The memberships of `user_ids` in `channel_id` (every channel, if None) changed:
        drop them, and keep reads already under way from filling them back."""
        for user_id in user_ids:
            watch = self._watches.get(user_id)
            if watch is not None:
                watch.generation += 1
                self._forget(user_id, watch, channel_id)

    async def get(self, channel_id: str, user_id: str, fresh: bool = False) -> Membership | None:
        """The user's membership of the channel (None: not a member), from the cache when it
        holds one; `fresh` reads the store whatever it holds (for a refusal the cached role
        would make: refusals are always judged on the store)."""
        key = (user_id, channel_id)
        watch = self._watches.get(user_id)
        if watch is not None and not fresh:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[1] > self._clock():
                    self._entries.move_to_end(key)
                    metrics.MEMBERSHIP_HITS.inc()
                    return entry[0]
                self._drop(key, watch)
        metrics.MEMBERSHIP_MISSES.inc()
        generation = None if watch is None else watch.generation
        found = await self._store.membership(channel_id, user_id)
        if (
            found is not None
            and not found.blocked
            and watch is not None
            and self._watches.get(user_id) is watch
            and watch.generation == generation
        ):
            self._entries[key] = (found, self._clock() + self._ttl_s)
            self._entries.move_to_end(key)
            watch.channels.add(channel_id)
            while len(self._entries) > self._max_entries:
                (old_user, old_channel), _ = self._entries.popitem(last=False)
                old = self._watches.get(old_user)
                if old is not None:
                    old.channels.discard(old_channel)
        return found

    def _forget(self, user_id: str, watch: _Watch, channel_id: str | None) -> None:
        channels = list(watch.channels) if channel_id is None else [channel_id]
        for channel in channels:
            self._drop((user_id, channel), watch)

    def _drop(self, key: tuple[str, str], watch: _Watch) -> None:
        self._entries.pop(key, None)
        watch.channels.discard(key[1])
