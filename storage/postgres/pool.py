"""The connection pool every Postgres store shares."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from parley.settings import Settings


async def open_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection[tuple[object, ...]]]:
    pool: AsyncConnectionPool[AsyncConnection[tuple[object, ...]]] = AsyncConnectionPool(
        settings.postgres_dsn,
        min_size=settings.postgres_pool_min,
        max_size=settings.postgres_pool_max,
        kwargs={"autocommit": True},
        open=False,
        # A restarted database leaves broken connections in the pool: check before use.
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True, timeout=30)
    return pool
