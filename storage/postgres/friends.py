"""Friend requests and friendships in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from storage.errors import Blocked, UnknownUsers
from storage.postgres.pool import Connection, Pool, connection
from storage.protocols.friends import FriendEdge, FriendState, GroupAdds


class PostgresFriendStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def request_or_accept(self, user_id: str, other_id: str) -> FriendState:
        """`user_id` asks `other_id` to be friends, or accepts their request; returns the state
        from `user_id`'s side afterwards (`requested` or `friend`). Idempotent."""
        async with connection(self._pool) as conn, conn.transaction():
            cur = await conn.execute("SELECT count(*) FROM users WHERE user_id = %s", (other_id,))
            row = await cur.fetchone()
            if row is None or row[0] == 0:
                raise UnknownUsers([other_id])
            if await _blocked_txn(conn, user_id, [other_id]):
                raise Blocked(other_id)
            # One lock per pair (the rows may not exist yet): two users asking each other at the
            # same moment end up friends rather than both left waiting on a request.
            low, high = sorted((user_id, other_id))
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{low}:{high}",))
            cur = await conn.execute(
                "SELECT state FROM friend_edges WHERE user_id = %s AND other_id = %s",
                (user_id, other_id),
            )
            row = await cur.fetchone()
            mine = None if row is None else cast(FriendState, row[0])
            if mine in ("friend", "requested"):
                return mine
            if mine == "pending":
                await conn.execute(
                    "UPDATE friend_edges SET state = 'friend', updated_at = now()"
                    " WHERE (user_id, other_id) IN ((%s, %s), (%s, %s))",
                    (user_id, other_id, other_id, user_id),
                )
                return "friend"
            await conn.execute(
                "INSERT INTO friend_edges (user_id, other_id, state)"
                " VALUES (%s, %s, 'requested'), (%s, %s, 'pending')",
                (user_id, other_id, other_id, user_id),
            )
            return "requested"

    async def remove(self, user_id: str, other_id: str) -> bool:
        """Unfriend, cancel or decline; False when there was nothing to remove."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "DELETE FROM friend_edges WHERE (user_id, other_id) IN ((%s, %s), (%s, %s))",
                (user_id, other_id, other_id, user_id),
            )
            return cur.rowcount > 0

    async def list(self, user_id: str) -> list[FriendEdge]:
        """Everyone `user_id` is friends with or has a request with."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT f.other_id, u.username, u.display_name, f.state FROM friend_edges f"
                " JOIN users u ON u.user_id = f.other_id WHERE f.user_id = %s ORDER BY u.username",
                (user_id,),
            )
            return [
                FriendEdge(
                    str(r[0]),
                    str(r[1]),
                    None if r[2] is None else str(r[2]),
                    cast(FriendState, r[3]),
                )
                for r in await cur.fetchall()
            ]

    async def visible_to(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of `others` whose presence `user_id` may see: friends (a block ends a
        friendship, so no blocked pair is among them)."""
        if not others:
            return set()
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT other_id FROM friend_edges"
                " WHERE user_id = %s AND state = 'friend' AND other_id = ANY(%s)",
                (user_id, list(others)),
            )
            return {str(r[0]) for r in await cur.fetchall()}

    async def block(self, user_id: str, other_id: str) -> bool:
        """`user_id` blocks `other_id`, ending any friendship or request between them; True if
        a friendship or request ended. Idempotent; raises `UnknownUsers`."""
        async with connection(self._pool) as conn, conn.transaction():
            cur = await conn.execute("SELECT count(*) FROM users WHERE user_id = %s", (other_id,))
            row = await cur.fetchone()
            if row is None or row[0] == 0:
                raise UnknownUsers([other_id])
            await conn.execute(
                "INSERT INTO blocks (blocker_id, blocked_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, other_id),
            )
            cur = await conn.execute(
                "DELETE FROM friend_edges WHERE (user_id, other_id) IN ((%s, %s), (%s, %s))",
                (user_id, other_id, other_id, user_id),
            )
            return cur.rowcount > 0

    async def unblock(self, user_id: str, other_id: str) -> None:
        """Lift `user_id`'s block of `other_id` (idempotent)."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s", (user_id, other_id)
            )

    async def blocked(self, user_id: str) -> Sequence[str]:
        """Whom `user_id` blocks, oldest first."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT blocked_id FROM blocks WHERE blocker_id = %s ORDER BY created_at, blocked_id",
                (user_id,),
            )
            return [str(r[0]) for r in await cur.fetchall()]

    async def blocked_between(self, user_id: str, others: Sequence[str]) -> set[str]:
        """Those of `others` with a block between them and `user_id`, either way."""
        if not others:
            return set()
        async with connection(self._pool) as conn:
            return await _blocked_txn(conn, user_id, others)

    async def group_adds(self, user_id: str) -> GroupAdds:
        """Who may add the user to groups."""
        async with connection(self._pool) as conn:
            cur = await conn.execute("SELECT group_adds FROM users WHERE user_id = %s", (user_id,))
            row = await cur.fetchone()
        return cast(GroupAdds, row[0]) if row else "friends"

    async def set_group_adds(self, user_id: str, who: GroupAdds) -> None:
        """Set who may add the user to groups."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE users SET group_adds = %s WHERE user_id = %s", (who, user_id)
            )

    async def refusing_adds(self, user_id: str, others: Sequence[str]) -> dict[str, GroupAdds]:
        """Those of `others` who do not let `user_id` add them to groups, with their setting."""
        if not others:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT u.user_id, u.group_adds FROM users u"
                " WHERE u.user_id = ANY(%s) AND (u.group_adds = 'nobody'"
                "   OR (u.group_adds = 'friends' AND NOT EXISTS ("
                "     SELECT 1 FROM friend_edges f"
                "     WHERE f.user_id = u.user_id AND f.other_id = %s AND f.state = 'friend')))",
                (list(others), user_id),
            )
            return {str(r[0]): cast(GroupAdds, r[1]) for r in await cur.fetchall()}


async def _blocked_txn(conn: Connection, user_id: str, others: Sequence[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT blocked_id FROM blocks WHERE blocker_id = %s AND blocked_id = ANY(%s)"
        " UNION SELECT blocker_id FROM blocks WHERE blocked_id = %s AND blocker_id = ANY(%s)",
        (user_id, list(others), user_id, list(others)),
    )
    return {str(r[0]) for r in await cur.fetchall()}
