"""Users and devices in Postgres."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import errors

from storage.errors import UsernameTaken
from storage.postgres.pool import Pool, connection
from storage.protocols.accounts import Device, Profile, User


class PostgresAccountStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create_user(
        self, user_id: str, username: str, password_hash: str, display_name: str | None
    ) -> None:
        """Create a user; raises `UsernameTaken` if the name is in use."""
        async with connection(self._pool) as conn:
            try:
                await conn.execute(
                    "INSERT INTO users (user_id, username, password_hash, display_name)"
                    " VALUES (%s, %s, %s, %s)",
                    (user_id, username, password_hash, display_name),
                )
            except errors.UniqueViolation as exc:
                raise UsernameTaken(username) from exc

    async def user_by_username(self, username: str) -> User | None:
        """The user with this username, if any."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT user_id, username, display_name, password_hash, suspended_at IS NOT NULL"
                " FROM users WHERE username = %s",
                (username,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return User(str(row[0]), str(row[1]), _opt(row[2]), str(row[3]), bool(row[4]))

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """The subset of `user_ids` that are accounts."""
        if not user_ids:
            return set()
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT user_id FROM users WHERE user_id = ANY(%s)", (list(user_ids),)
            )
            return {str(r[0]) for r in await cur.fetchall()}

    async def visible_profiles(self, viewer_id: str, user_ids: Sequence[str]) -> list[Profile]:
        """The profiles among `user_ids` that `viewer_id` may see, in no order: their own, a
        co-member's of a group, and, unless a block stands between the two, a friend's (or
        a friend request's either way) or the other member's of a direct channel."""
        if not user_ids:
            return []
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                _VISIBLE_PROFILES, {"viewer": viewer_id, "ids": list(user_ids)}
            )
            return [
                Profile(str(r[0]), str(r[1]), _opt(r[2]), bool(r[3])) for r in await cur.fetchall()
            ]

    async def set_display_name(self, user_id: str, display_name: str | None) -> Profile | None:
        """Set (or clear, with None) the user's display name; their profile, None if no user."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "UPDATE users SET display_name = %s WHERE user_id = %s"
                " RETURNING user_id, username, display_name, suspended_at IS NOT NULL",
                (display_name, user_id),
            )
            row = await cur.fetchone()
        return (
            None if row is None else Profile(str(row[0]), str(row[1]), _opt(row[2]), bool(row[3]))
        )

    async def create_device(
        self,
        device_id: str,
        user_id: str,
        name: str | None,
        token_hash: bytes,
        expires_at_ms: int,
        max_devices: int,
    ) -> tuple[Device, list[str]]:
        """Register a new device (one login) with its token's hash. If the user already has
        `max_devices` live ones, the least recently logged-in or renewed of them (the soonest to
        expire) are revoked to make room, in the same transaction; their ids come back."""
        async with connection(self._pool) as conn, conn.transaction():
            # The user's row serialises concurrent logins of one user: the count holds.
            await conn.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (user_id,))
            cur = await conn.execute(
                "SELECT device_id FROM devices"
                " WHERE user_id = %s AND revoked_at IS NULL AND expires_at > now()"
                " ORDER BY expires_at, created_at, device_id",
                (user_id,),
            )
            live = [str(row[0]) for row in await cur.fetchall()]
            evicted = live[: max(len(live) - max_devices + 1, 0)]
            if evicted:
                await conn.execute(
                    "UPDATE devices SET revoked_at = now()"
                    " WHERE device_id = ANY(%s) AND revoked_at IS NULL",
                    (evicted,),
                )
            cur = await conn.execute(
                "INSERT INTO devices (device_id, user_id, name, token_hash, expires_at)"
                " VALUES (%s, %s, %s, %s, to_timestamp(%s / 1000.0))"
                f" RETURNING {_DEVICE_COLUMNS}",
                (device_id, user_id, name, token_hash, expires_at_ms),
            )
            created = await cur.fetchone()
        assert created is not None
        return _device(created), evicted

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """The live device holding this token: not revoked, not expired."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_DEVICE_COLUMNS}, {_SUSPENDED} FROM devices"
                " WHERE token_hash = %s AND revoked_at IS NULL AND expires_at > now()",
                (token_hash,),
            )
            row = await cur.fetchone()
        return None if row is None else _device(row)

    async def live_device(self, device_id: str) -> Device | None:
        """The device if it is live (not revoked, its token not expired), with its current
        expiry (a renewal moves it)."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_DEVICE_COLUMNS}, {_SUSPENDED} FROM devices"
                " WHERE device_id = %s AND revoked_at IS NULL AND expires_at > now()",
                (device_id,),
            )
            row = await cur.fetchone()
        return None if row is None else _device(row)

    async def set_suspended(self, user_id: str, suspended: bool) -> bool:
        """Suspend the user, or lift their suspension (idempotent: a suspension keeps the
        time it began); False if no such user."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "UPDATE users SET suspended_at = CASE WHEN %(on)s"
                " THEN coalesce(suspended_at, now()) END WHERE user_id = %(user)s",
                {"on": suspended, "user": user_id},
            )
            return cur.rowcount == 1

    async def devices(self, user_id: str) -> list[Device]:
        """The user's devices not revoked, expired ones included, oldest first."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices"
                " WHERE user_id = %s AND revoked_at IS NULL"
                " ORDER BY created_at, device_id",
                (user_id,),
            )
            return [_device(row) for row in await cur.fetchall()]

    async def renew_token(self, device_id: str, token_hash: bytes, expires_at_ms: int) -> bool:
        """Give a live device a new token (the old one stops working); False if not live."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "UPDATE devices SET token_hash = %s, expires_at = to_timestamp(%s / 1000.0)"
                " WHERE device_id = %s AND revoked_at IS NULL AND expires_at > now()",
                (token_hash, expires_at_ms, device_id),
            )
            return cur.rowcount == 1

    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token; idempotent."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE devices SET revoked_at = now() WHERE device_id = %s AND revoked_at IS NULL",
                (device_id,),
            )

    async def revoke_devices(self, user_id: str) -> list[str]:
        """Revoke every live device of the user; the ids revoked."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "UPDATE devices SET revoked_at = now()"
                " WHERE user_id = %s AND revoked_at IS NULL RETURNING device_id",
                (user_id,),
            )
            return [str(row[0]) for row in await cur.fetchall()]


_VISIBLE_PROFILES = """
SELECT u.user_id, u.username, u.display_name, u.suspended_at IS NOT NULL FROM users u
WHERE u.user_id = ANY(%(ids)s) AND (
    u.user_id = %(viewer)s
    OR EXISTS (
        SELECT 1 FROM channel_members mine
        JOIN channel_members theirs ON theirs.channel_id = mine.channel_id
        JOIN channels c ON c.channel_id = mine.channel_id
        WHERE mine.user_id = %(viewer)s AND theirs.user_id = u.user_id AND c.kind = 'group'
    )
    OR (
        NOT EXISTS (
            SELECT 1 FROM blocks b
            WHERE (b.blocker_id = %(viewer)s AND b.blocked_id = u.user_id)
               OR (b.blocker_id = u.user_id AND b.blocked_id = %(viewer)s)
        )
        AND (
            EXISTS (
                SELECT 1 FROM friend_edges f
                WHERE f.user_id = %(viewer)s AND f.other_id = u.user_id
            )
            OR EXISTS (
                SELECT 1 FROM direct_pairs d
                WHERE (d.user_low = %(viewer)s AND d.user_high = u.user_id)
                   OR (d.user_low = u.user_id AND d.user_high = %(viewer)s)
            )
        )
    )
)
"""

_DEVICE_COLUMNS = (
    "device_id, user_id, name, (extract(epoch FROM created_at) * 1000)::bigint,"
    " (extract(epoch FROM expires_at) * 1000)::bigint"
)

# Whether the device's user is suspended, beside `_DEVICE_COLUMNS`.
_SUSPENDED = "(SELECT u.suspended_at IS NOT NULL FROM users u WHERE u.user_id = devices.user_id)"


def _device(row: Sequence[object]) -> Device:
    suspended = len(row) > 5 and bool(row[5])
    return Device(
        str(row[0]), str(row[1]), _opt(row[2]), int(str(row[3])), int(str(row[4])), suspended
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
