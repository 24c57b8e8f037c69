"""Applies storage/scylla/schema.cql: the keyspace and the message store's tables."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from string import Template

from cassandra.cluster import Session

from storage.scylla.session import execute, prepare

SCHEMA_CQL = Path(__file__).with_name("schema.cql")
SCHEMA_TIMEOUT_S = 60.0  # a schema change waits for every node to agree on it

# Keyspace names are spliced into CQL text, so only plain lower-case identifiers are accepted.
_KEYSPACE = re.compile(r"[a-z_][a-z0-9_]{0,47}")


def check_keyspace(keyspace: str) -> str:
    """The keyspace name, if it is a plain identifier Scylla accepts unquoted; else ValueError."""
    if not _KEYSPACE.fullmatch(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}: use [a-z_][a-z0-9_]*, at most 48")
    return keyspace


def schema_statements(
    keyspace: str, replication_factor: int = 1, *, scylla: bool = True
) -> list[str]:
    """The statements of schema.cql for this keyspace, in order, for Scylla or another CQL
    server (Apache Cassandra)."""
    if replication_factor < 1:
        raise ValueError("replication_factor must be at least 1")
    text = Template(SCHEMA_CQL.read_text()).substitute(
        keyspace=check_keyspace(keyspace),
        replication_factor=replication_factor,
        keyspace_options="AND tablets = {'enabled': false}" if scylla else "",
    )
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def is_scylla(session: Session) -> bool:
    """Whether the cluster is Scylla (which has a `system.scylla_local` table), not Cassandra."""
    rows = await execute(
        session,
        "SELECT table_name FROM system_schema.tables"
        " WHERE keyspace_name = 'system' AND table_name = 'scylla_local'",
    )
    return bool(rows)


async def migrate_scylla(session: Session, keyspace: str, *, replication_factor: int = 1) -> None:
    """Create the keyspace and tables that are missing; existing ones are left as they are (the
    replication of an existing keyspace is changed with ALTER KEYSPACE, not here). The driver
    waits for schema agreement after each statement, so the tables are usable on return."""
    scylla = await is_scylla(session)
    await _await_ring(session, replication_factor)
    for statement in schema_statements(keyspace, replication_factor, scylla=scylla):
        added = _ADD_COLUMN.fullmatch(statement)
        if added is not None and await _has_column(session, *added.groups()):
            continue  # CQL has no ADD IF NOT EXISTS on every server: asked first
        await execute(session, statement, timeout_s=SCHEMA_TIMEOUT_S)
    if await _has_table(session, keyspace, "reactions"):
        await _fold_reactions(session, keyspace)


RING_WAIT_S = 120.0


async def _await_ring(session: Session, nodes: int) -> None:
    """Until every node the session knows counts `nodes` ring members (itself and peers that
    own tokens), for up to `RING_WAIT_S`: a cluster whose nodes are still joining would get a
    keyspace replicated more times than it has nodes (the coordinator warns, and writes at
    quorum fail until they join). Every node is asked, since any may coordinate the schema
    statements and each counts from its own gossip. Past the wait, the keyspace is created
    anyway (a cluster truly smaller than its replication is the operator's to fix:
    docs/operations.md)."""
    deadline = asyncio.get_running_loop().time() + RING_WAIT_S
    while nodes > 1:
        if await asyncio.to_thread(_ring_complete, session, nodes):
            return
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.5)  # polling the ring, within the deadline


def _ring_complete(session: Session, nodes: int) -> bool:
    hosts = list(session.cluster.metadata.all_hosts())
    if len(hosts) < nodes:
        return False
    for host in hosts:
        try:
            peers = session.execute(
                "SELECT peer, tokens FROM system.peers", host=host, timeout=SCHEMA_TIMEOUT_S
            )
        except Exception:
            return False  # a node not answering yet: asked again
        if sum(1 for peer in peers if peer["tokens"]) + 1 < nodes:
            return False
    return True


_FOLD_WRITES_AT_ONCE = 64


async def _fold_reactions(session: Session, keyspace: str) -> None:
    """Reactions were rows of a `reactions` table, one per (message, emoji, user), kept when a
    reaction was taken back. Each message's current ones become its `reactions` value, written
    with the timestamp of its newest reaction row (a later reaction still wins); then the table
    is dropped, so this runs once (interrupted, it runs again whole: its writes repeat
    harmlessly)."""
    query = (
        "SELECT channel_id, bucket, message_id, emoji, user_id, active, WRITETIME(active) AS at"
        f" FROM {keyspace}.reactions"
    )
    # Every page of the table (the driver fetches them in turn), off the event loop.
    rows = await asyncio.to_thread(lambda: list(session.execute(query, timeout=SCHEMA_TIMEOUT_S)))
    folded: dict[tuple[str, int, int], tuple[int, dict[str, set[str]]]] = {}
    for row in rows:
        key = (str(row["channel_id"]), int(row["bucket"]), int(row["message_id"]))
        at, reactions = folded.get(key, (0, {}))
        if row["active"]:
            reactions.setdefault(str(row["emoji"]), set()).add(str(row["user_id"]))
        folded[key] = (max(at, int(row["at"] or 0)), reactions)
    update = await prepare(
        session,
        f"UPDATE {keyspace}.messages USING TIMESTAMP ? SET reactions = ?"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
    )
    writes = [(at, reactions or None, *key) for key, (at, reactions) in folded.items()]
    for start in range(0, len(writes), _FOLD_WRITES_AT_ONCE):
        chunk = writes[start : start + _FOLD_WRITES_AT_ONCE]
        await asyncio.gather(*(execute(session, update, params) for params in chunk))
    await execute(session, f"DROP TABLE {keyspace}.reactions", timeout_s=SCHEMA_TIMEOUT_S)


async def _has_table(session: Session, keyspace: str, table: str) -> bool:
    rows = await execute(
        session,
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, table),
    )
    return bool(rows)


_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+)\.(\w+) ADD (\w+) [\w<>, ]+")


async def _has_column(session: Session, keyspace: str, table: str, column: str) -> bool:
    rows = await execute(
        session,
        "SELECT column_name FROM system_schema.columns"
        " WHERE keyspace_name = %s AND table_name = %s AND column_name = %s",
        (keyspace, table, column),
    )
    return bool(rows)


async def migrate_cluster(
    hosts: Sequence[str], port: int, keyspace: str, *, replication_factor: int = 1
) -> None:
    """Connect to the cluster, apply the schema to `keyspace` (created with this replication
    if missing), disconnect."""
    from storage.scylla.session import connect_scylla, shutdown_scylla

    session = await connect_scylla(hosts, port=port)
    try:
        await migrate_scylla(session, keyspace, replication_factor=replication_factor)
    finally:
        await shutdown_scylla(session)
