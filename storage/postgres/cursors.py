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
        """Move the device's cursor forward to `message_id`; never backwards, and only while
        the device's user is a member of the channel (an ack taken before a removal and
        written after it is dropped)."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO cursors (device_id, channel_id, message_id)"
                " SELECT d.device_id, m.channel_id, %s FROM devices d"
                " JOIN channel_members m ON m.user_id = d.user_id AND m.channel_id = %s"
                " WHERE d.device_id = %s"
                " ON CONFLICT (device_id, channel_id) DO UPDATE"
                " SET message_id = GREATEST(cursors.message_id, EXCLUDED.message_id)",
                (message_id, channel_id, device_id),
            )
