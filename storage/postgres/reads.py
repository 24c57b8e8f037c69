"""Read state in Postgres: read markers per user and channel, and who shares them (receipts)."""

from __future__ import annotations

from collections.abc import Sequence

from storage.postgres.pool import Pool, connection
from storage.protocols.reads import MarkerMove


class PostgresReadStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def markers(self, user_id: str) -> dict[str, int]:
        """The user's read marker per channel (channels never read are absent)."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT channel_id, message_id FROM read_markers WHERE user_id = %s", (user_id,)
            )
            return {str(r[0]): int(str(r[1])) for r in await cur.fetchall()}

    async def advance(self, user_id: str, channel_id: str, message_id: int) -> MarkerMove | None:
        """Move the user's marker in the channel forward to `message_id` (never back), if the
        user is a member (None if not: nothing is written). One statement: whatever a gateway
        believed when it took the read, a member removed before it commits gets no marker (a
        removal that commits after it comes after the read). Whether the user shares receipts
        is read in the same statement."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "WITH member AS ("
                " SELECT 1 FROM channel_members WHERE channel_id = %s AND user_id = %s),"
                " moved AS ("
                " INSERT INTO read_markers (user_id, channel_id, message_id)"
                " SELECT %s, %s, %s FROM member"
                " ON CONFLICT (user_id, channel_id) DO UPDATE SET message_id = EXCLUDED.message_id"
                " WHERE read_markers.message_id < EXCLUDED.message_id RETURNING 1)"
                " SELECT EXISTS (SELECT 1 FROM member), EXISTS (SELECT 1 FROM moved),"
                " (SELECT read_receipts FROM users WHERE user_id = %s)",
                (channel_id, user_id, user_id, channel_id, message_id, user_id),
            )
            row = await cur.fetchone()
            assert row is not None
            if not row[0]:
                return None
            return MarkerMove(moved=bool(row[1]), shared=bool(row[2]))

    async def receipts(self, channel_id: str) -> dict[str, int]:
        """The markers of the channel's members who share them."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT r.user_id, r.message_id FROM read_markers r"
                " JOIN channel_members m ON m.channel_id = r.channel_id AND m.user_id = r.user_id"
                " JOIN users u ON u.user_id = r.user_id"
                " WHERE r.channel_id = %s AND u.read_receipts",
                (channel_id,),
            )
            return {str(r[0]): int(str(r[1])) for r in await cur.fetchall()}

    async def read_upto(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The markers of these (user, channel) pairs, for those that have one."""
        if not pairs:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT r.user_id, r.channel_id, r.message_id"
                " FROM unnest(%s::text[], %s::text[]) AS p(user_id, channel_id)"
                " JOIN read_markers r ON r.user_id = p.user_id AND r.channel_id = p.channel_id",
                ([u for u, _ in pairs], [c for _, c in pairs]),
            )
            return {(str(r[0]), str(r[1])): int(str(r[2])) for r in await cur.fetchall()}

    async def shares_receipts(self, user_id: str) -> bool:
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT read_receipts FROM users WHERE user_id = %s", (user_id,)
            )
            row = await cur.fetchone()
            return bool(row and row[0])

    async def share_receipts(self, user_id: str, shared: bool) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE users SET read_receipts = %s WHERE user_id = %s", (shared, user_id)
            )
