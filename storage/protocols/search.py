"""The search index of message text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.message import Message


@dataclass(frozen=True)
class SearchScope:
    """A channel a searcher may read, from `from_id` on (the first id of the instant they
    joined)."""

    channel_id: str
    from_id: int


@dataclass(frozen=True)
class SearchPage:
    """Matches newest first (by message id, then channel id). `more` when older matches may
    exist: ask again with `before` = the last message's id."""

    messages: list[Message]
    more: bool


class SearchIndex(Protocol):
    async def add(self, messages: Sequence[Message]) -> None:
        """Index messages. Idempotent: a message indexed again (same channel and id) stays
        one entry, with the text it was indexed with last; a removed one stays removed."""

    async def edit(self, channel_id: str, message_id: int, text: str) -> None:
        """The message's text is now `text`, if the message is indexed (a removed one stays
        removed)."""

    async def remove(self, channel_id: str, message_id: int) -> None:
        """The message leaves the index for good (idempotent): a later `add` of it, such as a
        rebuild's that read it from the log before its delete, is passed over."""

    async def search(
        self,
        query: str,
        scopes: Sequence[SearchScope],
        *,
        before: int | None,
        limit: int,
        deadline: float | None = None,
    ) -> SearchPage:
        """Up to `limit` messages of the scopes holding every token of `query`
        (storage/search/tokens.py), newest first, with ids below `before` if given. A page
        never ends between two matches with the same id (in different channels), so paging on
        with `before` misses nothing. All of it by `deadline` (`time.monotonic()`; the
        backend's own budget if None): raises `SearchTooCostly` when the query runs out of
        time, `SearchBusy` when the index had no room for it in time."""

    async def sent_by(
        self, sender_id: str, *, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[str, int]]:
        """Up to `limit` indexed messages of `sender_id` (deleted ones have left the index), as
        (channel_id, message_id), ascending by channel then id, after `after` if given."""

    async def clear(self) -> None:
        """Empty the index (before a rebuild)."""

    async def close(self) -> None:
        """Release connections."""
