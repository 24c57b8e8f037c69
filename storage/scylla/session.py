"""The Scylla session: connecting, and awaiting the driver's requests from asyncio.

The driver runs its own I/O thread and reports each request through callbacks on that thread;
`execute` hands the outcome back to the awaiting event loop with `call_soon_threadsafe`, so a
session is not tied to one event loop and no request ever blocks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from typing import Any, Literal

from cassandra import ConsistencyLevel, RequestValidationException
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import dict_factory

from storage.errors import PermanentStoreError, RetryableStoreError

Row = dict[str, Any]

CQL_PORT = 9042
REQUEST_TIMEOUT_S = 10.0
# What the driver raises for a value its column type cannot hold.
BIND_ERRORS = (struct.error, OverflowError, TypeError, ValueError)


Consistency = Literal["LOCAL_QUORUM", "QUORUM"]
# Each quorum, and the SERIAL level of its scope for lightweight transactions.
LEVELS: dict[Consistency, tuple[int, int]] = {
    "LOCAL_QUORUM": (ConsistencyLevel.LOCAL_QUORUM, ConsistencyLevel.LOCAL_SERIAL),
    "QUORUM": (ConsistencyLevel.QUORUM, ConsistencyLevel.SERIAL),
}


async def connect_scylla(
    hosts: Sequence[str],
    *,
    port: int = CQL_PORT,
    local_dc: str | None = None,
    consistency: Consistency = "LOCAL_QUORUM",
) -> Session:
    """A session on the cluster reached through `hosts` (contact points), not bound to a keyspace.

    Rows come back as dicts. Reads and writes use `consistency` (LOCAL_QUORUM by default) and
    lightweight transactions the SERIAL level of its scope (LOCAL_SERIAL), so a read after an
    acknowledged write sees it, with one replica of three down. `session.cluster.shutdown()`
    (see `shutdown_scylla`) releases it.
    """
    level, serial = LEVELS[consistency]
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
        consistency_level=level,
        serial_consistency_level=serial,
        request_timeout=REQUEST_TIMEOUT_S,
        row_factory=dict_factory,
    )
    cluster = Cluster(
        contact_points=list(hosts),
        port=port,
        protocol_version=4,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        # Connecting blocks while the driver discovers the cluster: keep it off the event loop.
        return await asyncio.to_thread(cluster.connect)
    except NoHostAvailable as exc:
        await asyncio.to_thread(cluster.shutdown)
        raise RetryableStoreError(f"no CQL host answers: {exc}") from exc
    except BaseException:
        await asyncio.to_thread(cluster.shutdown)
        raise


async def shutdown_scylla(session: Session) -> None:
    """Close the session's connections and the driver's threads."""
    await asyncio.to_thread(session.cluster.shutdown)


async def prepare(session: Session, cql: str) -> Any:
    """A prepared statement (preparing blocks in the driver, so it runs in a thread)."""
    return await asyncio.to_thread(session.prepare, cql)


async def execute(
    session: Session,
    statement: Any,
    params: Sequence[object] = (),
    *,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> list[Row]:
    """Run one statement and return its rows (the first page only: every query that may match
    more rows than a page carries a LIMIT). Writes return no rows; a lightweight transaction
    returns one, with its outcome under "[applied]"."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[Row]] = loop.create_future()

    def on_rows(rows: list[Row] | None) -> None:
        _call_in(loop, _resolve, done, rows or [])

    def on_error(error: BaseException) -> None:
        _call_in(loop, _fail, done, error)

    try:
        response = session.execute_async(
            statement, list(params) if params else None, timeout=timeout_s
        )
    except BIND_ERRORS as exc:
        # Raised while binding: a value the column type cannot hold.
        raise PermanentStoreError(f"cannot bind {exc}") from exc
    # Callbacks run on the driver's I/O thread, or at once here if the request already ended.
    response.add_callbacks(on_rows, on_error)
    try:
        return await done
    except RequestValidationException as exc:
        raise PermanentStoreError(str(exc)) from exc
    except BIND_ERRORS as exc:
        raise PermanentStoreError(f"cannot bind {exc}") from exc
    except Exception as exc:
        # Unavailable, timeouts, lost connections, no host: the cluster may answer later.
        raise RetryableStoreError(repr(exc)) from exc


def _call_in(loop: asyncio.AbstractEventLoop, fn: Any, *args: object) -> None:
    # RuntimeError: the loop closed while the request was in flight; nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _resolve(done: asyncio.Future[list[Row]], rows: list[Row]) -> None:
    if not done.done():
        done.set_result(list(rows))


def _fail(done: asyncio.Future[list[Row]], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
