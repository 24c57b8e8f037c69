"""Per-device, per-channel read cursors in Postgres."""

from __future__ import annotations

from storage.postgres.pool import Pool, connection


class PostgresCursorStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def cursors(self, device_id: str) -> dict[str, int]:
        """The device's acknowledged message id per channel."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT channel_id, message_id FROM cursors WHERE device_id = %s", (device_id,)
            )
            return {str(r[0]): int(str(r[1])) for r in await cur.fetchall()}

    async def advance(self, device_id: str, channel_id: str, message_id: int) -> None:
        """Move the device's cursor forward to `message_id`; never backwards."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO cursors (device_id, channel_id, message_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (device_id, channel_id) DO UPDATE"
                " SET message_id = GREATEST(cursors.message_id, EXCLUDED.message_id)",
                (device_id, channel_id, message_id),
            )
