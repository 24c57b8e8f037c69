"""The search index in Postgres: a table with a GIN index over each message's tokens, in the
same database as everything else (`parley dev`, the test suite, small deployments). Large ones
move to a search cluster behind the same protocol (docs/architecture.md (n))."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from schemas.message import Message
from storage.postgres.pool import Pool, connection
from storage.protocols import SearchPage, SearchScope, SearchTooCostly
from storage.search.tokens import index_tokens, query_tokens

# Tokens never hold a control character (storage/search/tokens.py): a safe separator.
_SEP = "\x1f"
_COLUMNS = "channel_id, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at"
QUERY_TIMEOUT_MS = 2000


class PostgresSearchIndex:
    def __init__(self, pool: Pool, timeout_ms: int = QUERY_TIMEOUT_MS) -> None:
        self._pool = pool
        self._timeout_ms = timeout_ms

    async def add(self, messages: Sequence[Message]) -> None:
        """Index messages. Idempotent: a message indexed again (same channel and id) stays
        one entry."""
        if not messages:
            return
        unique = list({(m.channel_id, m.message_id): m for m in messages}.values())
        async with connection(self._pool) as conn:
            await conn.execute(
                f"INSERT INTO search_entries ({_COLUMNS}, tokens)"
                " SELECT t.channel_id, t.message_id, t.sender_id, t.sender_device_id,"
                "        t.client_msg_id, t.text, t.sent_at, string_to_array(t.tokens, %s)"
                " FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[],"
                "             %s::text[], %s::text[], %s::text[])"
                "   AS t(channel_id, message_id, sender_id, sender_device_id, client_msg_id, text,"
                "        sent_at, tokens)"
                # Ordered by key: two writers of one batch cannot deadlock on each other's rows.
                " ORDER BY t.channel_id, t.message_id"
                " ON CONFLICT (channel_id, message_id) DO NOTHING",
                (
                    _SEP,
                    [m.channel_id for m in unique],
                    [m.message_id for m in unique],
                    [m.sender_id for m in unique],
                    [m.sender_device_id for m in unique],
                    [m.client_msg_id for m in unique],
                    [m.text for m in unique],
                    [m.sent_at for m in unique],
                    [_SEP.join(index_tokens(m.text)) for m in unique],
                ),
            )

    async def search(
        self, query: str, scopes: Sequence[SearchScope], *, before: int | None, limit: int
    ) -> SearchPage:
        """Up to `limit` messages of the scopes holding every token of `query`, newest first,
        below `before`; never ends a page between two matches with the same id."""
        tokens = query_tokens(query)
        if not tokens or not scopes or limit < 1:
            return SearchPage([], False)
        sql = (
            f"SELECT {', '.join('e.' + c for c in _COLUMNS.split(', '))}"
            " FROM search_entries e"
            " JOIN unnest(%s::text[], %s::bigint[]) AS s(channel_id, from_id)"
            "   ON e.channel_id = s.channel_id AND e.message_id >= s.from_id"
            " WHERE e.tokens @> %s::text[] AND e.message_id < %s"
            " ORDER BY e.message_id DESC, e.channel_id DESC LIMIT %s"
        )
        params: tuple[object, ...] = (
            [s.channel_id for s in scopes],
            [s.from_id for s in scopes],
            tokens,
            before if before is not None else 2**63 - 1,
            limit + 1,
        )
        rows = await self._fetch(sql, params)
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
                return SearchPage(await self._fetch(sql, params, at=boundary), True)
        return SearchPage(page, True)

    async def _fetch(
        self, sql: str, params: tuple[object, ...], at: int | None = None
    ) -> list[Message]:
        """The query's rows; with `at`, only those with that id (all of them)."""
        if at is not None:
            sql = sql.replace("e.message_id < %s", "e.message_id = %s")
            channels = params[0]
            assert isinstance(channels, list)
            params = (*params[:3], at, len(channels))
        async with connection(self._pool) as conn:
            try:
                async with conn.transaction():
                    # Bounded: a query of only common words in a busy account gives up.
                    await conn.execute(
                        "SELECT set_config('statement_timeout', %s, true)", (str(self._timeout_ms),)
                    )
                    cur = await conn.execute(sql.encode(), params)
                    return [_message(r) for r in await cur.fetchall()]
            except psycopg.errors.QueryCanceled:
                raise SearchTooCostly(sql) from None

    async def clear(self) -> None:
        """Empty the index (before a rebuild)."""
        async with connection(self._pool) as conn:
            await conn.execute("TRUNCATE search_entries")

    async def close(self) -> None:
        """Release connections (the pool belongs to the caller)."""


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
