"""Presence as last decided by the presence processor, in Postgres (changes only: online or
offline, connected or not; never per heartbeat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from storage.postgres.pool import Pool, connection
from storage.protocols.presence import Presence

_MS = "(extract(epoch FROM last_active_at) * 1000)::bigint"


class PostgresPresenceStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        """The last decided presence of each user that has one."""
        if not user_ids:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT user_id, status, {_MS}, connected FROM presence WHERE user_id = ANY(%s)",
                (list(user_ids),),
            )
            return {str(r[0]): _presence(r) for r in await cur.fetchall()}

    async def save(self, changes: Sequence[tuple[Presence, int]]) -> None:
        """Record presence changes, each with the user's presence partition. A change older than
        what is stored (a replayed event) never moves `last_active_at` backwards."""
        # One row per user: the last change decides (an upsert may not touch a row twice).
        changes = list({c.user_id: (c, p) for c, p in changes}.values())
        if not changes:
            return
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO presence (user_id, presence_partition, status, last_active_at, connected)"
                " SELECT u, p, s, to_timestamp(ms / 1000.0), c FROM unnest("
                "%s::text[], %s::int[], %s::text[], %s::bigint[], %s::bool[]) AS t(u, p, s, ms, c)"
                " ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status,"
                " connected = EXCLUDED.connected,"
                " presence_partition = EXCLUDED.presence_partition,"
                " last_active_at = GREATEST(presence.last_active_at, EXCLUDED.last_active_at)",
                (
                    [c.user_id for c, _ in changes],
                    [p for _, p in changes],
                    [c.status for c, _ in changes],
                    [c.last_active_ms for c, _ in changes],
                    [c.connected for c, _ in changes],
                ),
            )

    async def online_in(self, partitions: Sequence[int]) -> list[Presence]:
        """Users recorded online whose presence partition is one of `partitions`."""
        if not partitions:
            return []
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT user_id, status, {_MS}, connected FROM presence"
                " WHERE status = 'online' AND presence_partition = ANY(%s)",
                (list(partitions),),
            )
            return [_presence(r) for r in await cur.fetchall()]


def _presence(row: tuple[object, ...]) -> Presence:
    return Presence(
        str(row[0]), cast(Literal["online", "offline"], row[1]), int(str(row[2])), bool(row[3])
    )
