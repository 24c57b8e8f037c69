"""Invite links to groups in Postgres (`storage/migrations/0023_invites.sql`)."""

from __future__ import annotations

from storage.errors import InviteUnusable, TooManyInvites
from storage.postgres.channels import add_member_txn, lock_group_txn
from storage.postgres.pool import Connection, Pool, connection
from storage.protocols.invites import Invite, InviteTarget, Joined

# Whether link `i` can be used now: not expired, not used up, and its maker still an owner or
# admin of the group (a demoted or departed admin's links stop working with them).
_USABLE = (
    "((i.expires_at IS NULL OR i.expires_at > now())"
    " AND (i.max_uses IS NULL OR i.uses < i.max_uses)"
    " AND EXISTS (SELECT 1 FROM channel_members w WHERE w.channel_id = i.channel_id"
    "   AND w.user_id = i.created_by AND w.role IN ('owner', 'admin')))"
)
_MS = "(extract(epoch FROM {}) * 1000)::bigint"
_COLUMNS = (
    "i.invite_id, i.code_prefix, i.channel_id, i.created_by,"
    f" {_MS.format('i.created_at')}, {_MS.format('i.expires_at')}, i.max_uses, i.uses,"
    f" {_USABLE}"
)


def _invite(row: tuple[object, ...]) -> Invite:
    return Invite(
        invite_id=str(row[0]),
        code_prefix=str(row[1]),
        channel_id=str(row[2]),
        created_by=str(row[3]),
        created_at_ms=int(str(row[4])),
        expires_at_ms=None if row[5] is None else int(str(row[5])),
        max_uses=None if row[6] is None else int(str(row[6])),
        uses=int(str(row[7])),
        usable=bool(row[8]),
    )


class PostgresInviteStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(
        self,
        invite_id: str,
        code_hash: bytes,
        code_prefix: str,
        channel_id: str,
        created_by: str,
        expires_at_ms: int | None,
        max_uses: int | None,
        max_usable: int,
    ) -> Invite:
        """A new link to the group. Links of the group that can no longer be used are forgotten
        first; raises `TooManyInvites` if `max_usable` usable ones remain, `NotAGroup`."""
        async with connection(self._pool) as conn, conn.transaction():
            await lock_group_txn(conn, channel_id)
            await conn.execute(
                f"DELETE FROM channel_invites i WHERE i.channel_id = %s AND NOT {_USABLE}",
                (channel_id,),
            )
            cur = await conn.execute(
                "SELECT count(*) FROM channel_invites WHERE channel_id = %s", (channel_id,)
            )
            row = await cur.fetchone()
            if row is not None and int(str(row[0])) >= max_usable:
                raise TooManyInvites(channel_id)
            await conn.execute(
                "INSERT INTO channel_invites"
                " (invite_id, code_hash, code_prefix, channel_id, created_by, expires_at, max_uses)"
                " VALUES (%s, %s, %s, %s, %s, to_timestamp(%s::bigint / 1000.0), %s)",
                (
                    invite_id,
                    code_hash,
                    code_prefix,
                    channel_id,
                    created_by,
                    expires_at_ms,
                    max_uses,
                ),
            )
            (invite,) = await _invites_txn(conn, "i.invite_id = %s", (invite_id,))
        return invite

    async def invites(self, channel_id: str) -> list[Invite]:
        """The group's links, oldest first."""
        async with connection(self._pool) as conn:
            return await _invites_txn(conn, "i.channel_id = %s", (channel_id,))

    async def revoke(self, channel_id: str, invite_id: str) -> bool:
        """Forget the group's link `invite_id`; False if it has no such link."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "DELETE FROM channel_invites WHERE channel_id = %s AND invite_id = %s",
                (channel_id, invite_id),
            )
            return cur.rowcount > 0

    async def target(self, code_hash: bytes) -> InviteTarget | None:
        """The group of the link with this code hash, if the link is usable now."""
        async with connection(self._pool) as conn:
            found = await _invites_txn(conn, f"i.code_hash = %s AND {_USABLE}", (code_hash,))
            if not found:
                return None
            invite = found[0]
            cur = await conn.execute(
                "SELECT c.name, count(*),"
                " coalesce(array_agg(m.user_id) FILTER (WHERE m.role <> 'member'), '{}')"
                " FROM channels c JOIN channel_members m ON m.channel_id = c.channel_id"
                " WHERE c.channel_id = %s GROUP BY c.channel_id",
                (invite.channel_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        managers = [str(u) for u in row[2]] if isinstance(row[2], list) else []
        return InviteTarget(invite, str(row[0]), int(str(row[1])), sorted(managers))

    async def join(self, code_hash: bytes, user_id: str, max_members: int) -> Joined:
        """Add `user_id` to the link's group and count the use, in one transaction serialised
        with the group's other membership changes (its row's lock), so a link is never used
        more than its `max_uses` and a group never grows past `max_members`. A member already
        is left as they are and the use is not counted. Raises `InviteUnusable`, `GroupFull`."""
        async with connection(self._pool) as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT channel_id FROM channel_invites WHERE code_hash = %s", (code_hash,)
            )
            row = await cur.fetchone()
            if row is None:
                raise InviteUnusable()
            channel_id = str(row[0])
            await lock_group_txn(conn, channel_id)
            # Read again under the lock: a join that held it before may have used it up.
            cur = await conn.execute(
                f"SELECT i.invite_id FROM channel_invites i WHERE i.code_hash = %s AND {_USABLE}",
                (code_hash,),
            )
            row = await cur.fetchone()
            if row is None:
                raise InviteUnusable()
            members, added = await add_member_txn(conn, channel_id, user_id, max_members)
            if added:
                await conn.execute(
                    "UPDATE channel_invites SET uses = uses + 1 WHERE invite_id = %s", (row[0],)
                )
        return Joined(channel_id, members, added)


async def _invites_txn(conn: Connection, where: str, params: tuple[object, ...]) -> list[Invite]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM channel_invites i WHERE {where}"
        " ORDER BY i.created_at, i.invite_id",
        params,
    )
    return [_invite(r) for r in await cur.fetchall()]
