"""The search index in Postgres: a table with a GIN index over each message's tokens, in the
same database as everything else (`parley dev`, the test suite, small deployments). Large ones
move to a search cluster behind the same protocol (docs/architecture.md (n)).

Long texts are tokenised in a process of its own (storage/search/tokeniser.py), not on the
caller's event loop: the indexer shares its loop with message delivery in the processor. Each
text's work is bounded (storage/search/tokens.py `MAX_SEARCH_CHARS`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, cast

import orjson
import psycopg

from schemas.message import Message
from storage.errors import SearchBusy, SearchTooCostly, StoreBusy
from storage.postgres.pool import Pool, connection
from storage.protocols.search import SearchPage, SearchScope
from storage.search.tokeniser import cut
from storage.search.tokens import query_tokens

# Tokens never hold a control character (storage/search/tokens.py): a safe separator.
_SEP = "\x1f"
_COLUMNS = "channel_id, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at"
QUERY_TIMEOUT_MS = 2000  # a search's time in all, when its caller gives no deadline
_STATS_TTL_S = 60.0
# The text one `add` statement carries, at most (one longer message alone): a batch of huge
# texts is written a few at a time, so no one statement holds the index's rows of them all.
ADD_STATEMENT_CHARS = 256 * 1024
_SELECT = ", ".join("e." + c for c in _COLUMNS.split(", "))
# Two plans for one answer. By tokens: every entry holding the tokens (the GIN index), joined
# with the caller's channels, then the newest; cheap when the tokens are rare. By channel: each
# channel's entries newest first (the primary key) until enough match; cheap when they are
# common, where the first plan would read a large share of the table.
_BY_TOKENS = (
    f"SELECT {_SELECT} FROM search_entries e"
    " JOIN unnest(%(channels)s::text[], %(from_ids)s::bigint[]) AS s(channel_id, from_id)"
    "   ON e.channel_id = s.channel_id AND e.message_id >= s.from_id"
    " WHERE e.tokens @> %(tokens)s::text[] AND e.message_id < %(before)s"
    " ORDER BY e.message_id DESC, e.channel_id DESC LIMIT %(limit)s"
)
_BY_CHANNEL = (
    "SELECT m.* FROM unnest(%(channels)s::text[], %(from_ids)s::bigint[]) AS s(channel_id, from_id)"
    f" CROSS JOIN LATERAL (SELECT {_SELECT} FROM search_entries e"
    "   WHERE e.channel_id = s.channel_id AND e.message_id >= s.from_id"
    "     AND e.message_id < %(before)s AND e.tokens @> %(tokens)s::text[]"
    "   ORDER BY e.message_id DESC LIMIT %(limit)s) m"
    " ORDER BY m.message_id DESC, m.channel_id DESC LIMIT %(limit)s"
)


class PostgresSearchIndex:
    def __init__(
        self,
        pool: Pool,
        timeout_ms: int = QUERY_TIMEOUT_MS,
        plan: Literal["auto", "tokens", "channels"] = "auto",
    ) -> None:
        """`plan` fixes one of the two plans (the contract suite runs each); `auto` picks the
        cheaper by the table's statistics."""
        self._plan = plan
        self._pool = pool
        self._timeout_ms = timeout_ms
        self._stats_at: float | None = None
        self._cached: tuple[float, float, dict[str, float]] | None = None

    async def add(self, messages: Sequence[Message]) -> None:
        """Index messages. Idempotent: a message indexed again (same channel and id) stays
        one entry, with the text it was indexed with last; a removed one stays removed."""
        if not messages:
            return
        by_key = {(m.channel_id, m.message_id): m for m in messages}
        unique = [by_key[key] for key in sorted(by_key)]  # the parts in key order, as each row
        for part in _parts(unique, ADD_STATEMENT_CHARS):
            await self._add(part)

    async def _add(self, messages: list[Message]) -> None:
        tokens = await cut([m.text for m in messages], _SEP)
        # The rows travel as one JSON parameter (encoded by orjson, in C), not as arrays that
        # psycopg adapts value by value in Python on the caller's loop.
        rows = orjson.dumps(
            [
                {
                    "ch": m.channel_id,
                    "id": m.message_id,
                    "s": m.sender_id,
                    "d": m.sender_device_id,
                    "c": m.client_msg_id,
                    "tx": m.text,
                    "at": m.sent_at,
                    "tk": joined,
                }
                for m, joined in zip(messages, tokens, strict=True)
            ]
        ).decode()
        async with connection(self._pool) as conn:
            await conn.execute(
                f"INSERT INTO search_entries ({_COLUMNS}, tokens)"
                " SELECT t.ch, t.id, t.s, t.d, t.c, t.tx, t.at, string_to_array(t.tk, %s)"
                " FROM json_to_recordset(%s::json)"
                "   AS t(ch text, id bigint, s text, d text, c text, tx text, at text, tk text)"
                " WHERE NOT EXISTS (SELECT 1 FROM search_removed r"
                "   WHERE r.channel_id = t.ch AND r.message_id = t.id)"
                # Ordered by key: two writers of one batch cannot deadlock on each other's rows.
                " ORDER BY t.ch, t.id"
                " ON CONFLICT (channel_id, message_id) DO UPDATE"
                " SET text = EXCLUDED.text, tokens = EXCLUDED.tokens",
                (_SEP, rows),
            )

    async def search(
        self,
        query: str,
        scopes: Sequence[SearchScope],
        *,
        before: int | None,
        limit: int,
        deadline: float | None = None,
    ) -> SearchPage:
        """Up to `limit` messages of the scopes holding every token of `query`, newest first,
        below `before`; never ends a page between two matches with the same id. All of it by
        `deadline` (`time.monotonic()`; `timeout_ms` from now if None): waiting for a
        connection past it raises `SearchBusy`, a statement still running at it is cancelled
        and raises `SearchTooCostly`."""
        tokens = query_tokens(query)
        if not tokens or not scopes or limit < 1:
            return SearchPage([], False)
        if deadline is None:
            deadline = time.monotonic() + self._timeout_ms / 1000
        params: dict[str, object] = {
            "channels": [s.channel_id for s in scopes],
            "from_ids": [s.from_id for s in scopes],
            "tokens": tokens,
            "before": before if before is not None else 2**63 - 1,
            "limit": limit + 1,
        }
        dense = await self._dense(tokens, len(scopes), limit + 1, deadline)
        plan = _BY_CHANNEL if dense else _BY_TOKENS
        rows = await self._fetch(plan, params, deadline)
        if len(rows) <= limit:
            return SearchPage(rows, False)
        page = rows[:limit]
        # The next page starts below the last id, so the last id's matches must all be on
        # this one: cut before them, or, if they fill the page, take all of them (at most one
        # per channel, so a page may pass `limit` here).
        boundary = page[-1].message_id
        if rows[limit].message_id == boundary:
            page = [m for m in page if m.message_id != boundary]
            if not page:
                at = {**params, "before": boundary + 1, "limit": len(scopes)}
                rows = await self._fetch(plan, at, deadline)
                return SearchPage([m for m in rows if m.message_id == boundary], True)
        return SearchPage(page, True)

    async def _dense(self, tokens: list[str], scopes: int, wanted: int, deadline: float) -> bool:
        """Whether reading each channel newest first costs less than reading every entry of
        the tokens: true when matches are common (a frequent word). From the table's own
        statistics (ANALYZE, autovacuum), read at most once a minute."""
        if self._plan != "auto":
            return self._plan == "channels"
        stats = await self._stats(deadline)
        if stats is None:
            return False
        rows, per_channel, frequent = stats
        rare = min(frequent.values(), default=0.0) / 2
        density = 1.0
        for token in tokens:
            density *= frequent.get(token, rare)
        if density <= 0:
            return False
        by_tokens = density * rows  # entries of the tokens read, newest or not
        by_channel = scopes * min(per_channel, wanted / density)  # entries read per channel
        return by_channel < by_tokens

    async def _stats(self, deadline: float) -> tuple[float, float, dict[str, float]] | None:
        """(entries, entries per channel, frequency of each frequent token), or None before
        the table was first analysed."""
        now = time.monotonic()
        if self._stats_at is not None and now - self._stats_at < _STATS_TTL_S:
            return self._cached
        found = await self._rows(
            "SELECT c.reltuples, d.n_distinct, t.most_common_elems::text::text[],"
            " t.most_common_elem_freqs"
            " FROM pg_class c"
            " LEFT JOIN pg_stats d ON d.tablename = c.relname AND d.attname = 'channel_id'"
            " LEFT JOIN pg_stats t ON t.tablename = c.relname AND t.attname = 'tokens'"
            " WHERE c.relname = 'search_entries' AND c.relkind = 'r'",
            {},
            deadline,
        )
        row = found[0] if found else None
        self._stats_at = now
        self._cached = None
        if row is not None and row[2] is not None and float(str(row[0])) > 0:
            rows = float(str(row[0]))
            distinct = float(str(row[1] or 1))
            channels = -distinct * rows if distinct < 0 else distinct  # negative: a fraction
            elems = cast(list[str], row[2])
            freqs = cast(list[float], row[3])
            self._cached = (rows, rows / max(channels, 1.0), dict(zip(elems, freqs, strict=False)))
        return self._cached

    async def _fetch(self, sql: str, params: dict[str, object], deadline: float) -> list[Message]:
        return [_message(r) for r in await self._rows(sql, params, deadline)]

    async def _rows(
        self, sql: str, params: dict[str, object], deadline: float
    ) -> list[tuple[object, ...]]:
        """The rows of one statement, by `deadline`: the wait for a connection and the
        statement share what is left of it (the server cancels the statement then, so the
        connection goes back to the pool idle)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise SearchTooCostly("no time left")
        try:
            async with connection(self._pool, wait_s=left) as conn:
                # Whole milliseconds, at least one (0 would mean no limit).
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                try:
                    async with conn.transaction():
                        # Bounded: a query of only common words in a busy account gives up.
                        await conn.execute(
                            "SELECT set_config('statement_timeout', %s, true)", (str(left_ms),)
                        )
                        cur = await conn.execute(sql.encode(), params)
                        return await cur.fetchall()
                except psycopg.errors.QueryCanceled:
                    raise SearchTooCostly(sql) from None
        except StoreBusy:
            raise SearchBusy("no connection came free in time") from None

    async def edit(self, channel_id: str, message_id: int, text: str) -> None:
        """The message's text is now `text`, if the message is indexed (a removed one stays
        removed)."""
        [tokens] = await cut([text], _SEP)
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE search_entries SET text = %s, tokens = string_to_array(%s, %s)"
                " WHERE channel_id = %s AND message_id = %s",
                (text, tokens, _SEP, channel_id, message_id),
            )

    async def remove(self, channel_id: str, message_id: int) -> None:
        """The message leaves the index for good: a later `add` of it (a rebuild that read it
        before its delete) is passed over. Idempotent."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "WITH removed AS (INSERT INTO search_removed (channel_id, message_id)"
                "  VALUES (%(channel)s, %(id)s) ON CONFLICT DO NOTHING)"
                " DELETE FROM search_entries WHERE channel_id = %(channel)s"
                " AND message_id = %(id)s",
                {"channel": channel_id, "id": message_id},
            )

    async def sent_by(
        self, sender_id: str, *, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[str, int]]:
        """Up to `limit` indexed messages of `sender_id`, as (channel_id, message_id),
        ascending by channel then id, after `after` if given (`search_entries_sender`)."""
        channel_id, message_id = after if after is not None else ("", 0)
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT channel_id, message_id FROM search_entries WHERE sender_id = %s"
                " AND (channel_id, message_id) > (%s, %s)"
                " ORDER BY channel_id, message_id LIMIT %s",
                (sender_id, channel_id, message_id, limit),
            )
            return [(str(r[0]), int(str(r[1]))) for r in await cur.fetchall()]

    async def clear(self) -> None:
        """Empty the index (before a rebuild). What was removed stays removed."""
        async with connection(self._pool) as conn:
            await conn.execute("TRUNCATE search_entries")

    async def close(self) -> None:
        """Release connections (the pool belongs to the caller)."""


def _parts(messages: list[Message], chars: int) -> list[list[Message]]:
    """The messages in order, in runs of at most `chars` characters of text (a longer message
    alone)."""
    parts: list[list[Message]] = []
    size = chars
    for message in messages:
        if size + len(message.text) > chars:
            parts.append([])
            size = 0
        parts[-1].append(message)
        size += len(message.text)
    return parts


def _message(row: tuple[object, ...]) -> Message:
    return Message(
        channel_id=str(row[0]),
        message_id=int(str(row[1])),
        sender_id=str(row[2]),
        sender_device_id=str(row[3]),
        client_msg_id=str(row[4]),
        text=str(row[5]),
        sent_at=str(row[6]),
    )
