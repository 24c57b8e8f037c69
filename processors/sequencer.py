"""Message ids: time-sortable, strictly increasing per channel, and the same on a replay.

Invariant: a channel's sends are read in one order (one partition of `parley.messages.v1`).
Each new message gets `max(id_floor(sent_at_ms), last + 1)`, where `last` is the channel's
newest id. The id is a function of the channel's earlier ids and this event alone, so a replay
of the topic into an empty store gives every message the same id again; a replay over a store
that has them finds them by their idempotency key and keeps their ids.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from schemas.ids import id_floor
from storage.protocols import MessageStore


class Sequencer:
    def __init__(self, store: MessageStore, max_channels: int = 1_000_000) -> None:
        self._store = store
        self._last: OrderedDict[str, int] = OrderedDict()
        self._max_channels = max_channels

    async def load(self, channel_ids: Iterable[str]) -> None:
        """Make sure the newest id of each channel is known (read from the store once)."""
        missing = [c for c in set(channel_ids) if c not in self._last]
        if not missing:
            return
        found = await self._store.last_message_ids(missing)
        for channel_id in missing:
            self._remember(channel_id, found.get(channel_id, 0))

    def next_id(self, channel_id: str, sent_at_ms: int) -> int:
        """The id of the channel's next new message. `load` must have been called for it."""
        message_id = max(id_floor(sent_at_ms), self._last[channel_id] + 1)
        self._remember(channel_id, message_id)
        return message_id

    def observe(self, channel_id: str, message_id: int) -> None:
        """Account for an id given earlier (a send seen again after a crash or replay)."""
        # Only for a channel already loaded: a repeat found in another channel (a reused
        # client_msg_id) must not stand in for that channel's newest id, which `load` reads.
        if channel_id in self._last:
            self._remember(channel_id, max(self._last[channel_id], message_id))

    def forget(self, channel_ids: Iterable[str]) -> None:
        """Drop what is known of these channels; the next `load` reads the store again.

        Called when a batch failed before its messages were stored, so that ids handed out
        for it are not skipped over on the retry.
        """
        for channel_id in channel_ids:
            self._last.pop(channel_id, None)

    def _remember(self, channel_id: str, message_id: int) -> None:
        self._last[channel_id] = message_id
        self._last.move_to_end(channel_id)
        if len(self._last) > self._max_channels:
            self._last.popitem(last=False)
