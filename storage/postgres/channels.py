"""Channels and memberships in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from storage.errors import GroupFull, LastOwner, NotAGroup, NotAMember, UnknownUsers
from storage.postgres.pool import Connection, Pool, connection
from storage.protocols.channels import (
    DEFAULT_NOTIFICATIONS,
    Channel,
    Level,
    Membership,
    Notifications,
    Role,
)

_MS = "(extract(epoch FROM m.joined_at) * 1000)::bigint"
# A direct channel's history is always visible to both its members.
_VISIBLE = "(c.kind = 'direct' OR c.history_visible)"
# The member's notification settings: level, and the mute's end in epoch ms (or NULL).
_NOTIFY = "m.notify, (extract(epoch FROM m.muted_until) * 1000)::bigint, m.notify_version"


def _notifications(level: object, muted_until_ms: object, version: object) -> Notifications:
    muted = None if muted_until_ms is None else int(str(muted_until_ms))
    if level == "all" and muted is None and version == 0:
        return DEFAULT_NOTIFICATIONS
    return Notifications(cast(Level, level), muted, int(str(version)))


class PostgresChannelStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get_or_create_direct(self, channel_id: str, a: str, b: str) -> tuple[Channel, bool]:
        """The one direct channel of the pair, created with `channel_id` if missing; bool = created."""
        low, high = sorted((a, b))
        async with connection(self._pool) as conn, conn.transaction():
            await _require_users_txn(conn, [low, high])
            # The pair's row is the lock: a concurrent creator waits here, then finds ours.
            await conn.execute(
                "INSERT INTO channels (channel_id, kind) VALUES (%s, 'direct')", (channel_id,)
            )
            cur = await conn.execute(
                "INSERT INTO direct_pairs (user_low, user_high, channel_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING channel_id",
                (low, high, channel_id),
            )
            created = await cur.fetchone() is not None
            if created:
                await conn.execute(
                    "INSERT INTO channel_members (channel_id, user_id) VALUES (%s, %s), (%s, %s)",
                    (channel_id, low, channel_id, high),
                )
            else:
                await conn.execute("DELETE FROM channels WHERE channel_id = %s", (channel_id,))
                cur = await conn.execute(
                    "SELECT channel_id FROM direct_pairs WHERE user_low = %s AND user_high = %s",
                    (low, high),
                )
                row = await cur.fetchone()
                assert row is not None
                channel_id = str(row[0])
        return Channel(channel_id, "direct", None, [low, high]), created

    async def create_group(
        self,
        channel_id: str,
        name: str,
        member_ids: Sequence[str],
        max_members: int,
        history_visible: bool = True,
    ) -> Channel:
        """Create a group; raises `GroupFull` above `max_members`, `UnknownUsers` for bad ids."""
        members = list(dict.fromkeys(member_ids))
        if len(members) > max_members:
            raise GroupFull(channel_id)
        async with connection(self._pool) as conn, conn.transaction():
            await _require_users_txn(conn, members)
            await conn.execute(
                "INSERT INTO channels (channel_id, kind, name, history_visible)"
                " VALUES (%s, 'group', %s, %s)",
                (channel_id, name, history_visible),
            )
            await conn.execute(
                "INSERT INTO channel_members (channel_id, user_id, role)"
                " SELECT %s, m, CASE WHEN m = %s THEN 'owner' ELSE 'member' END"
                " FROM unnest(%s::text[]) AS m",
                (channel_id, members[0], members),
            )
        return Channel(channel_id, "group", name, members, {members[0]: "owner"}, history_visible)

    async def channel(self, channel_id: str) -> Channel | None:
        """A channel with its members."""
        async with connection(self._pool) as conn:
            found = await _channels_txn(conn, "c.channel_id = %s", (channel_id,))
        return found[0] if found else None

    async def membership(self, channel_id: str, user_id: str) -> Membership | None:
        """The user's membership of the channel, if a member."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT m.channel_id, {_MS}, m.role,"
                # Only for a direct channel (CASE is lazy): a block between its two members.
                " CASE WHEN c.kind = 'direct' THEN EXISTS ("
                "     SELECT 1 FROM channel_members o JOIN blocks b"
                "       ON (b.blocker_id, b.blocked_id) IN ((o.user_id, m.user_id),"
                "                                          (m.user_id, o.user_id))"
                "     WHERE o.channel_id = m.channel_id AND o.user_id <> m.user_id)"
                f" ELSE false END, {_VISIBLE}, {_NOTIFY}"
                " FROM channel_members m JOIN channels c ON c.channel_id = m.channel_id"
                " WHERE m.channel_id = %s AND m.user_id = %s",
                (channel_id, user_id),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Membership(
            str(row[0]),
            int(str(row[1])),
            cast(Role, row[2]),
            bool(row[3]),
            bool(row[4]),
            _notifications(row[5], row[6], row[7]),
        )

    async def memberships(self, user_id: str) -> list[Membership]:
        """Every channel the user belongs to."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT m.channel_id, {_MS}, {_VISIBLE}, {_NOTIFY} FROM channel_members m"
                " JOIN channels c ON c.channel_id = m.channel_id WHERE m.user_id = %s",
                (user_id,),
            )
            return [
                Membership(
                    str(r[0]),
                    int(str(r[1])),
                    history_visible=bool(r[2]),
                    notifications=_notifications(r[3], r[4], r[5]),
                )
                for r in await cur.fetchall()
            ]

    async def members_of(self, channel_ids: Sequence[str]) -> dict[str, dict[str, Membership]]:
        """The members of several channels, each with their membership: channel id -> user id
        -> membership (missing channels are absent)."""
        if not channel_ids:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT m.channel_id, m.user_id, {_MS}, m.role, {_VISIBLE}, {_NOTIFY}"
                " FROM channel_members m JOIN channels c ON c.channel_id = m.channel_id"
                " WHERE m.channel_id = ANY(%s)",
                (list(channel_ids),),
            )
            found: dict[str, dict[str, Membership]] = {}
            for r in await cur.fetchall():
                membership = Membership(
                    str(r[0]),
                    int(str(r[2])),
                    cast(Role, r[3]),
                    history_visible=bool(r[4]),
                    notifications=_notifications(r[5], r[6], r[7]),
                )
                found.setdefault(str(r[0]), {})[str(r[1])] = membership
            return found

    async def channels_of(self, user_id: str) -> list[Channel]:
        """The user's channels with their members."""
        async with connection(self._pool) as conn:
            return await _channels_txn(
                conn,
                "c.channel_id IN (SELECT channel_id FROM channel_members WHERE user_id = %s)",
                (user_id,),
            )

    async def members(self, channel_ids: Sequence[str]) -> dict[str, list[str]]:
        """Member lists for several channels (missing channels are absent)."""
        if not channel_ids:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT channel_id, array_agg(user_id ORDER BY user_id) FROM channel_members"
                " WHERE channel_id = ANY(%s) GROUP BY channel_id",
                (list(channel_ids),),
            )
            return {str(r[0]): cast(list[str], r[1]) for r in await cur.fetchall()}

    async def mentionable(self, asks: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """For each (sender id, username) asked, the id of the user with that username, unless
        a block stands between them and the sender (either way)."""
        if not asks:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT a.sender, a.name, u.user_id"
                " FROM unnest(%s::text[], %s::text[]) AS a(sender, name)"
                " JOIN users u ON u.username = a.name"
                " WHERE NOT EXISTS (SELECT 1 FROM blocks b"
                "   WHERE (b.blocker_id = a.sender AND b.blocked_id = u.user_id)"
                "   OR (b.blocker_id = u.user_id AND b.blocked_id = a.sender))",
                ([s for s, _ in asks], [n for _, n in asks]),
            )
            return {(str(r[0]), str(r[1])): str(r[2]) for r in await cur.fetchall()}

    async def set_notifications(
        self, channel_id: str, user_id: str, notifications: Notifications
    ) -> Notifications | None:
        """Set the member's notification settings for the channel, one version above the
        last; returns them as stored, None if not a member."""
        muted = notifications.muted_until_ms
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "UPDATE channel_members m SET notify = %s,"
                " muted_until = CASE WHEN %s::bigint IS NULL THEN NULL"
                "   ELSE to_timestamp(%s::bigint / 1000.0) END,"
                " notify_version = notify_version + 1"
                f" WHERE channel_id = %s AND user_id = %s RETURNING {_NOTIFY}",
                (notifications.level, muted, muted, channel_id, user_id),
            )
            row = await cur.fetchone()
        return None if row is None else _notifications(row[0], row[1], row[2])

    async def notifications(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Notifications]:
        """The notification settings of these (user, channel) pairs, for the members among
        them."""
        if not pairs:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT m.user_id, m.channel_id, {_NOTIFY}"
                " FROM unnest(%s::text[], %s::text[]) AS p(user_id, channel_id)"
                " JOIN channel_members m ON m.user_id = p.user_id AND m.channel_id = p.channel_id",
                ([u for u, _ in pairs], [c for _, c in pairs]),
            )
            return {
                (str(r[0]), str(r[1])): _notifications(r[2], r[3], r[4])
                for r in await cur.fetchall()
            }

    async def blocked_direct(self, channel_ids: Sequence[str]) -> set[str]:
        """Those of the channels that are direct channels with a block between their two
        members (either way)."""
        if not channel_ids:
            return set()
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT c.channel_id FROM channels c"
                " WHERE c.channel_id = ANY(%s) AND c.kind = 'direct' AND EXISTS ("
                "   SELECT 1 FROM channel_members m JOIN channel_members o"
                "     ON o.channel_id = m.channel_id AND o.user_id <> m.user_id"
                "   JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = o.user_id"
                "   WHERE m.channel_id = c.channel_id)",
                (list(channel_ids),),
            )
            return {str(r[0]) for r in await cur.fetchall()}

    async def add_member(self, channel_id: str, user_id: str, max_members: int) -> list[str]:
        """Add a member to a group; returns the members after. Raises GroupFull / NotAGroup / UnknownUsers."""
        async with connection(self._pool) as conn, conn.transaction():
            await lock_group_txn(conn, channel_id)
            await _require_users_txn(conn, [user_id])
            members, _ = await add_member_txn(conn, channel_id, user_id, max_members)
            return members

    async def remove_member(self, channel_id: str, user_id: str) -> list[str]:
        """Remove a member from a group; returns the members after. Raises NotAGroup. A group
        keeps an owner: when its last owner goes, the longest-standing admin (or else member)
        becomes owner in the same transaction."""
        async with connection(self._pool) as conn, conn.transaction():
            await lock_group_txn(conn, channel_id)
            await conn.execute(
                "DELETE FROM channel_members WHERE channel_id = %s AND user_id = %s",
                (channel_id, user_id),
            )
            await conn.execute(
                "UPDATE channel_members SET role = 'owner'"
                " WHERE channel_id = %s AND user_id = ("
                "   SELECT user_id FROM channel_members WHERE channel_id = %s"
                "   ORDER BY role = 'admin' DESC, joined_at, user_id LIMIT 1)"
                " AND NOT EXISTS ("
                "   SELECT 1 FROM channel_members WHERE channel_id = %s AND role = 'owner')",
                (channel_id, channel_id, channel_id),
            )
            return await _members_txn(conn, channel_id)

    async def hide(self, channel_id: str, user_id: str, upto: int) -> None:
        """Hide a channel from the member's list until a message newer than `upto`."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE channel_members SET hidden_upto = %s WHERE channel_id = %s AND user_id = %s",
                (upto, channel_id, user_id),
            )

    async def hidden(self, user_id: str) -> dict[str, int]:
        """The channels the user hid, each with the newest message id it was hidden at."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT channel_id, hidden_upto FROM channel_members"
                " WHERE user_id = %s AND hidden_upto IS NOT NULL",
                (user_id,),
            )
            return {str(r[0]): int(str(r[1])) for r in await cur.fetchall()}

    async def set_role(self, channel_id: str, user_id: str, role: Role) -> None:
        """Set a member's role in a group. Raises NotAGroup, `NotAMember` if `user_id` is not
        in it, and `LastOwner` if that would leave the group without an owner."""
        async with connection(self._pool) as conn, conn.transaction():
            await lock_group_txn(conn, channel_id)
            cur = await conn.execute(
                "SELECT role FROM channel_members WHERE channel_id = %s AND user_id = %s",
                (channel_id, user_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotAMember(user_id)
            if row[0] == "owner" and role != "owner":
                cur = await conn.execute(
                    "SELECT count(*) FROM channel_members WHERE channel_id = %s AND role = 'owner'",
                    (channel_id,),
                )
                owners = await cur.fetchone()
                if owners is None or int(str(owners[0])) <= 1:
                    raise LastOwner(channel_id)
            await conn.execute(
                "UPDATE channel_members SET role = %s WHERE channel_id = %s AND user_id = %s",
                (role, channel_id, user_id),
            )

    async def set_history_visible(self, channel_id: str, visible: bool) -> Channel:
        """Whether the group's past is visible to members who join later; returns the group
        after. Raises NotAGroup."""
        async with connection(self._pool) as conn, conn.transaction():
            await lock_group_txn(conn, channel_id)
            await conn.execute(
                "UPDATE channels SET history_visible = %s WHERE channel_id = %s",
                (visible, channel_id),
            )
            (channel,) = await _channels_txn(conn, "c.channel_id = %s", (channel_id,))
        return channel


async def _require_users_txn(conn: Connection, user_ids: Sequence[str]) -> None:
    cur = await conn.execute("SELECT user_id FROM users WHERE user_id = ANY(%s)", (list(user_ids),))
    found = {str(r[0]) for r in await cur.fetchall()}
    missing = [u for u in user_ids if u not in found]
    if missing:
        raise UnknownUsers(missing)


async def add_member_txn(
    conn: Connection, channel_id: str, user_id: str, max_members: int
) -> tuple[list[str], bool]:
    """Add a user to a group whose row the transaction has locked (`lock_group_txn`): the
    members after, and whether the user was added (False: a member already). Every way into
    a group (an add, an invite link) goes through here. Raises GroupFull."""
    members = await _members_txn(conn, channel_id)
    if user_id in members:
        return members, False
    if len(members) >= max_members:
        raise GroupFull(channel_id)
    await conn.execute(
        "INSERT INTO channel_members (channel_id, user_id) VALUES (%s, %s)",
        (channel_id, user_id),
    )
    return sorted([*members, user_id]), True


async def lock_group_txn(conn: Connection, channel_id: str) -> None:
    # Membership changes of one group are serialised on its row, so the size check holds.
    cur = await conn.execute(
        "SELECT kind FROM channels WHERE channel_id = %s FOR UPDATE", (channel_id,)
    )
    row = await cur.fetchone()
    if row is None or row[0] != "group":
        raise NotAGroup(channel_id)


async def _members_txn(conn: Connection, channel_id: str) -> list[str]:
    cur = await conn.execute(
        "SELECT user_id FROM channel_members WHERE channel_id = %s ORDER BY user_id", (channel_id,)
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def _channels_txn(conn: Connection, where: str, params: tuple[object, ...]) -> list[Channel]:
    cur = await conn.execute(
        "SELECT c.channel_id, c.kind, c.name, array_agg(m.user_id ORDER BY m.user_id),"
        f" array_agg(m.role ORDER BY m.user_id), {_VISIBLE}"
        " FROM channels c JOIN channel_members m ON m.channel_id = c.channel_id"
        f" WHERE {where} GROUP BY c.channel_id ORDER BY c.channel_id",
        params,
    )
    return [
        Channel(
            str(r[0]),
            cast(Literal["direct", "group"], r[1]),
            None if r[2] is None else str(r[2]),
            cast(list[str], r[3]),
            _roles(cast(list[str], r[3]), cast(list[str], r[4])),
            bool(r[5]),
        )
        for r in await cur.fetchall()
    ]


def _roles(members: list[str], roles: list[str]) -> dict[str, Role]:
    """The members who are owners or admins."""
    return {u: cast(Role, r) for u, r in zip(members, roles, strict=True) if r != "member"}
