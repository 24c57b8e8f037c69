"""Users and devices in Postgres."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import errors

from storage.postgres.pool import Pool, connection
from storage.protocols import Device, User, UsernameTaken


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
                "SELECT user_id, username, display_name, password_hash FROM users WHERE username = %s",
                (username,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return User(str(row[0]), str(row[1]), _opt(row[2]), str(row[3]))

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """The subset of `user_ids` that are accounts."""
        if not user_ids:
            return set()
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT user_id FROM users WHERE user_id = ANY(%s)", (list(user_ids),)
            )
            return {str(r[0]) for r in await cur.fetchall()}

    async def create_device(
        self, device_id: str, user_id: str, name: str | None, token_hash: bytes
    ) -> Device:
        """Register a new device (one login) with its token's hash."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "INSERT INTO devices (device_id, user_id, name, token_hash) VALUES (%s, %s, %s, %s)"
                " RETURNING (extract(epoch FROM created_at) * 1000)::bigint",
                (device_id, user_id, name, token_hash),
            )
            row = await cur.fetchone()
        assert row is not None
        return Device(device_id, user_id, name, int(str(row[0])))

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """The live (not revoked) device holding this token."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT device_id, user_id, name, (extract(epoch FROM created_at) * 1000)::bigint"
                " FROM devices WHERE token_hash = %s AND revoked_at IS NULL",
                (token_hash,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Device(str(row[0]), str(row[1]), _opt(row[2]), int(str(row[3])))

    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token; idempotent."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE devices SET revoked_at = now() WHERE device_id = %s AND revoked_at IS NULL",
                (device_id,),
            )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
