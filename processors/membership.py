"""Who receives a channel's messages: member lists cached per channel.

`channel.members` events on the messages topic replace a channel's list at the point in the
channel's stream where the change happened; the database is read for channels not cached and
again after `ttl_s`, in case an event was lost between the database commit and the publish.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from storage.protocols import ChannelStore
from storage.visibility import visible_from


class MembershipCache:
    def __init__(self, store: ChannelStore, ttl_s: float, max_channels: int = 200_000) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_channels = max_channels
        self._members: dict[str, tuple[list[str], float]] = {}

    async def load(self, channel_ids: Iterable[str]) -> None:
        now = time.monotonic()
        wanted = set(channel_ids)
        stale = [c for c in wanted if self._members.get(c, ([], 0.0))[1] <= now]
        if not stale:
            return
        if len(self._members) + len(stale) > self._max_channels:
            # Room for these channels: the others go (read again when next needed), not the
            # ones held fresh, whose messages would otherwise go to nobody.
            self._members = {c: held for c, held in self._members.items() if c in wanted}
        found = await self._store.members(stale)
        for channel_id in stale:
            self.set(channel_id, found.get(channel_id, []))

    def set(self, channel_id: str, members: list[str]) -> None:
        self._members[channel_id] = (members, time.monotonic() + self._ttl_s)

    def members(self, channel_id: str) -> list[str]:
        return self._members.get(channel_id, ([], 0.0))[0]

    async def lowest_visible(self, channel_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per channel and member, the smallest message id the member may see now
        (storage/visibility.py), read from the store (for changes to messages only: a change
        to a message below a member's floor is not theirs to receive)."""
        found = await self._store.members_of(sorted(set(channel_ids)))
        return {
            channel_id: {user_id: visible_from(m) for user_id, m in room.items()}
            for channel_id, room in found.items()
        }
