"""Push endpoints and push claims, in Postgres."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from schemas.ids import SEQUENCE_BITS
from storage.postgres.pool import Pool, connection
from storage.protocols.push import PushCandidate, PushEndpoint

# One statement: a first claim inserts, a later one updates only if the rules allow it (under
# concurrent claims the UPDATE re-checks its WHERE on the newest row, so one wins), and a claim
# of this very message not yet done is handed out again.
_CLAIM = f"""
WITH c AS (
    SELECT * FROM unnest(%(users)s::text[], %(channels)s::text[], %(ids)s::bigint[],
                         %(floors)s::bigint[]) AS t(user_id, channel_id, message_id, active_floor)
), inserted AS (
    INSERT INTO push_claims (user_id, channel_id, message_id)
    SELECT user_id, channel_id, message_id FROM c
    ON CONFLICT (user_id, channel_id) DO NOTHING
    RETURNING user_id, channel_id, message_id
), updated AS (
    UPDATE push_claims AS p SET message_id = c.message_id, done = false FROM c
    WHERE p.user_id = c.user_id AND p.channel_id = c.channel_id
      AND p.message_id < c.message_id
      AND ((c.message_id >> {SEQUENCE_BITS}) - (p.message_id >> {SEQUENCE_BITS}) >= %(window)s
           OR p.message_id < c.active_floor)
    RETURNING p.user_id, p.channel_id, p.message_id
)
SELECT user_id, channel_id, message_id FROM inserted
UNION ALL
SELECT user_id, channel_id, message_id FROM updated
UNION ALL
SELECT p.user_id, p.channel_id, p.message_id FROM push_claims AS p JOIN c
    ON p.user_id = c.user_id AND p.channel_id = c.channel_id AND p.message_id = c.message_id
    WHERE NOT p.done
"""


class PostgresPushStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def set_endpoint(self, endpoint: PushEndpoint) -> None:
        """Register or replace the device's endpoint."""
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO push_endpoints (device_id, user_id, platform, token)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE"
                " SET platform = EXCLUDED.platform, token = EXCLUDED.token, updated_at = now()",
                (endpoint.device_id, endpoint.user_id, endpoint.platform, endpoint.token),
            )

    async def remove_endpoint(self, device_id: str) -> bool:
        """Forget the device's endpoint; False when it had none."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "DELETE FROM push_endpoints WHERE device_id = %s", (device_id,)
            )
            return cur.rowcount > 0

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, list[PushEndpoint]]:
        """The endpoints of the users' live devices (not revoked, token not expired), for users
        that have any."""
        if not user_ids:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT e.user_id, e.device_id, e.platform, e.token"
                " FROM push_endpoints e JOIN devices d ON d.device_id = e.device_id"
                " WHERE e.user_id = ANY(%s) AND d.revoked_at IS NULL AND d.expires_at > now()"
                " ORDER BY e.device_id",
                (list(user_ids),),
            )
            found: dict[str, list[PushEndpoint]] = defaultdict(list)
            for row in await cur.fetchall():
                endpoint = PushEndpoint(*(str(v) for v in row))
                found[endpoint.user_id].append(endpoint)
            return dict(found)

    async def claim(
        self, candidates: Sequence[PushCandidate], window_ms: int
    ) -> list[PushCandidate]:
        """Claim the candidates that get a push (see `PushStore.claim`)."""
        first: dict[tuple[str, str], PushCandidate] = {}
        for c in sorted(candidates, key=lambda c: c.message_id):
            first.setdefault((c.user_id, c.channel_id), c)
        if not first:
            return []
        chosen = list(first.values())
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                _CLAIM,
                {
                    "users": [c.user_id for c in chosen],
                    "channels": [c.channel_id for c in chosen],
                    "ids": [c.message_id for c in chosen],
                    "floors": [c.active_floor for c in chosen],
                    "window": window_ms,
                },
            )
            won = {(str(r[0]), str(r[1]), int(str(r[2]))) for r in await cur.fetchall()}
        return [c for c in chosen if (c.user_id, c.channel_id, c.message_id) in won]

    async def finish(self, claims: Sequence[PushCandidate]) -> None:
        """Mark claims done: the provider took their pushes, or gave up on them."""
        if not claims:
            return
        async with connection(self._pool) as conn:
            await conn.execute(
                "UPDATE push_claims AS p SET done = true"
                " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS c(u, ch, m)"
                " WHERE p.user_id = c.u AND p.channel_id = c.ch AND p.message_id = c.m",
                (
                    [c.user_id for c in claims],
                    [c.channel_id for c in claims],
                    [c.message_id for c in claims],
                ),
            )
