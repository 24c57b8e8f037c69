"""The connection pool every Postgres store shares."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from schemas.settings import Settings
from storage.errors import PermanentStoreError, RetryableStoreError, StoreBusy

Connection = AsyncConnection[tuple[object, ...]]
Pool = AsyncConnectionPool[Connection]


@asynccontextmanager
async def connection(pool: Pool, wait_s: float | None = None) -> AsyncIterator[Connection]:
    """A connection of the pool, with psycopg's errors raised as Parley's store errors: bad
    data is permanent; a lost, closed or timed-out connection is retryable, and `StoreBusy`
    when none came free within `wait_s` seconds (the pool's own 30 s if None)."""
    try:
        async with pool.connection(wait_s) as conn:
            yield conn
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
        raise PermanentStoreError(_first_line(exc)) from exc
    except PoolTimeout as exc:
        raise StoreBusy(_first_line(exc)) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolClosed) as exc:
        raise RetryableStoreError(_first_line(exc)) from exc


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else repr(exc)


def _is_disturbed(conn: Connection) -> bool:
    """Whether something arrived on an idle connection (or it is closed).

    An idle connection has nothing to read. A restarted or stopped server closes it (a FATAL
    message, then EOF), which makes it readable: only then is a round trip needed to tell. This
    spares one per query (it was half the gateway's database time per send).
    """
    return conn.closed or _readable(conn.fileno())


def _readable(fd: int) -> bool:
    # poll, not select: a gateway holds thousands of sockets, and select refuses fds >= 1024.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


async def open_pool(settings: Settings, max_size: int | None = None) -> Pool:
    """A pool of `settings.postgres_pool_max` connections, or `max_size`."""
    size = settings.postgres_pool_max if max_size is None else max_size

    async def check_if_disturbed(conn: Connection) -> None:
        # A restarted database leaves broken connections in the pool: check before use.
        if not _is_disturbed(conn):
            return
        # A restart breaks every idle connection at once. Met one at a time, each would cost
        # the caller a growing back-off (1, 2, 4 … s: a full pool outlasts the 30 s timeout),
        # so the other idle ones are checked and replaced now, then this one is refused.
        await pool.check()
        await AsyncConnectionPool.check_connection(conn)

    pool: Pool = AsyncConnectionPool(
        settings.postgres_dsn,
        min_size=min(settings.postgres_pool_min, size),
        max_size=size,
        kwargs={"autocommit": True},
        open=False,
        check=check_if_disturbed,
    )
    await pool.open(wait=True, timeout=30)
    return pool
