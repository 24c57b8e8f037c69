"""The message store on Scylla (production; Postgres is the embedded default).

Tables (storage/scylla/schema.cql): `messages` partitioned by (channel, time bucket),
`message_sends` claimed with lightweight transactions, `channel_buckets` listing the buckets a
channel has messages in, and `channel_heads` holding each channel's newest id (max-wins).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import Session

from schemas.ids import id_unix_ms
from schemas.message import Message
from storage.buckets import bucket_of
from storage.protocols import SendKey
from storage.scylla.schema import check_keyspace
from storage.scylla.session import (
    CQL_PORT,
    Row,
    connect_scylla,
    execute,
    prepare,
    shutdown_scylla,
)

_COLUMNS = 'channel_id, message_id, sender_id, sender_device_id, client_msg_id, "text", sent_at'
_COUNT_READ_FACTOR = 4  # an unread count reads at most this many rows per message it counts
_BUCKETS_PER_READ = 16  # bucket ids fetched at a time while a page walks a channel's buckets


@dataclass(frozen=True)
class _Statements:
    claim_send: Any
    list_bucket: Any
    insert_message: Any
    insert_message_if_absent: Any
    advance_head: Any
    sent_id: Any
    message: Any
    head: Any
    buckets_down: Any
    buckets_up: Any
    ascending_in_bucket: Any
    senders_in_bucket: Any
    descending_in_bucket: Any


def _cql(ks: str) -> dict[str, str]:
    return {
        "claim_send": f"INSERT INTO {ks}.message_sends"
        " (sender_device_id, client_msg_id, channel_id, message_id) VALUES (?, ?, ?, ?)"
        " IF NOT EXISTS",
        "list_bucket": f"INSERT INTO {ks}.channel_buckets (channel_id, bucket) VALUES (?, ?)",
        "insert_message": f"INSERT INTO {ks}.messages (bucket, {_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "insert_message_if_absent": f"INSERT INTO {ks}.messages (bucket, {_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
        "advance_head": f"UPDATE {ks}.channel_heads USING TIMESTAMP ?"
        " SET last_message_id = ? WHERE channel_id = ?",
        "sent_id": f"SELECT channel_id, message_id FROM {ks}.message_sends"
        " WHERE sender_device_id = ? AND client_msg_id = ?",
        "message": f"SELECT {_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "head": f"SELECT last_message_id FROM {ks}.channel_heads WHERE channel_id = ?",
        "buckets_down": f"SELECT bucket FROM {ks}.channel_buckets"
        " WHERE channel_id = ? AND bucket <= ? ORDER BY bucket DESC LIMIT ?",
        "buckets_up": f"SELECT bucket FROM {ks}.channel_buckets"
        " WHERE channel_id = ? AND bucket >= ? ORDER BY bucket ASC LIMIT ?",
        "ascending_in_bucket": f"SELECT {_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id ASC LIMIT ?",
        "senders_in_bucket": f"SELECT sender_id FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ? LIMIT ?",
        "descending_in_bucket": f"SELECT {_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id DESC LIMIT ?",
    }


class ScyllaMessageStore:
    """A `MessageStore` on a Scylla keyspace migrated by `storage.scylla.schema.migrate_scylla`.

    Construct it, then `await open()` (or use `open_scylla_message_store`); `close()` shuts the
    driver down. The store owns its driver session."""

    def __init__(
        self,
        hosts: Sequence[str],
        keyspace: str,
        *,
        port: int = CQL_PORT,
        local_dc: str | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("at least one Scylla host is needed")
        self._hosts = list(hosts)
        self._keyspace = check_keyspace(keyspace)
        self._port = port
        self._local_dc = local_dc
        self._session: Session | None = None
        self._statements: _Statements | None = None

    async def open(self) -> None:
        """Connect and prepare the statements; the keyspace's tables must exist."""
        if self._session is not None:
            raise RuntimeError("ScyllaMessageStore is already open")
        session = await connect_scylla(self._hosts, port=self._port, local_dc=self._local_dc)
        try:
            cql = _cql(self._keyspace)
            prepared = await asyncio.gather(*(prepare(session, text) for text in cql.values()))
            self._statements = _Statements(**dict(zip(cql, prepared, strict=True)))
        except BaseException:
            await shutdown_scylla(session)
            raise
        self._session = session

    async def insert(self, messages: Sequence[Message]) -> None:
        """Persist messages. Idempotent: a message already stored under its id, or a send whose
        idempotency key is already stored, is left as it is."""
        if not messages:
            return
        q = self._q()
        # The send key is claimed first (IF NOT EXISTS); only the id that holds the claim is
        # stored, so two writers racing on one send can never store it twice under different
        # ids. Within one call the first message of a key makes the claim, as in Postgres.
        claimers: dict[SendKey, Message] = {}
        for m in messages:
            claimers.setdefault(_send_key(m), m)
        claims = await self._all(
            (q.claim_send, (m.sender_device_id, m.client_msg_id, m.channel_id, m.message_id))
            for m in claimers.values()
        )
        held: dict[SendKey, tuple[int, bool]] = {}  # key -> (id holding it, claimed just now)
        for key, rows in zip(claimers, claims, strict=True):
            if rows[0]["[applied]"]:
                held[key] = (claimers[key].message_id, True)
            else:
                held[key] = (int(rows[0]["message_id"]), False)
        stored: dict[SendKey, tuple[Message, bool]] = {}
        for m in messages:
            holder, fresh = held[_send_key(m)]
            if m.message_id == holder:
                stored.setdefault(_send_key(m), (m, fresh))
        if not stored:
            return
        # A bucket is listed before its rows are written: paging only reads listed buckets,
        # and a listed bucket that is still empty costs one read, never a missed message.
        listed = {(m.channel_id, bucket_of(m.message_id)) for m, _ in stored.values()}
        await self._all((q.list_bucket, channel_bucket) for channel_bucket in listed)
        # A send claimed just now has no row yet (the sequencer gives an id to one send only):
        # a plain write. A send claimed earlier by this same id (a retry, or a replay) may
        # already be stored: left as it is (IF NOT EXISTS), and written if an earlier attempt
        # stopped between the claim and the row.
        await self._all(
            (
                q.insert_message if fresh else q.insert_message_if_absent,
                (bucket_of(m.message_id), *_values(m)),
            )
            for m, fresh in stored.values()
        )
        # Heads move after the rows exist, so a head never names a message a reader cannot get.
        heads: dict[str, int] = {}
        for m, _ in stored.values():
            heads[m.channel_id] = max(heads.get(m.channel_id, 0), m.message_id)
        await self._all(
            (q.advance_head, (_head_timestamp(message_id), message_id, channel_id))
            for channel_id, message_id in heads.items()
        )

    async def find_sent(self, keys: Sequence[SendKey]) -> dict[SendKey, Message]:
        """Messages already stored for these idempotency keys."""
        if not keys:
            return {}
        q = self._q()
        unique = list(dict.fromkeys(keys))
        claims = await self._all((q.sent_id, key) for key in unique)
        claimed = [rows[0] for rows in claims if rows]
        found = await self._all(
            (q.message, (c["channel_id"], bucket_of(c["message_id"]), c["message_id"]))
            for c in claimed
        )
        # A claim whose row is not written yet (a send in flight) is not "sent": absent, as in
        # Postgres, where the join finds no row.
        messages = [_message(rows[0]) for rows in found if rows]
        return {_send_key(m): m for m in messages}

    async def last_message_ids(self, channel_ids: Sequence[str]) -> dict[str, int]:
        """The newest message id of each channel that has messages."""
        if not channel_ids:
            return {}
        q = self._q()
        unique = list(dict.fromkeys(channel_ids))
        heads = await self._all((q.head, (channel_id,)) for channel_id in unique)
        return {
            channel_id: int(rows[0]["last_message_id"])
            for channel_id, rows in zip(unique, heads, strict=True)
            if rows and rows[0]["last_message_id"] is not None
        }

    async def count_after(self, channel_id: str, after: int, *, not_from: str, cap: int) -> int:
        """How many of the channel's messages above `after` were not sent by `not_from`, counted
        up to `cap`: an unread count. Reads senders only, at most `_COUNT_READ_FACTOR * cap` of
        them (a user's own messages are read and skipped; Scylla cannot filter them out)."""
        q = self._q()
        heads = await execute(self._s(), q.head, (channel_id,))
        if not heads or heads[0]["last_message_id"] is None or cap <= 0:
            return 0
        head = int(heads[0]["last_message_id"])
        budget, count = _COUNT_READ_FACTOR * cap, 0
        async with aclosing(self._buckets(channel_id, bucket_of(after), upwards=True)) as walk:
            async for bucket in walk:
                if bucket > bucket_of(head) or count >= cap or budget <= 0:
                    break
                params = (channel_id, bucket, after, head, budget)
                rows = await execute(self._s(), q.senders_in_bucket, params)
                budget -= len(rows)
                count += sum(1 for r in rows if r["sender_id"] != not_from)
        return min(count, cap)

    async def page(
        self,
        channel_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
    ) -> list[Message]:
        """Up to `limit` messages ascending by id: the newest below `before`, the oldest above
        `after`, or the newest of all when neither is given."""
        if limit <= 0:
            return []
        q = self._q()
        # A page reads no further than the channel's head. The rows of one insert become
        # visible one by one, in any order, and the head moves only once all of them exist:
        # below the head every message is there, above it one may be missing while a later one
        # shows. A reader paging `after` the newer one would skip the missing one for good.
        heads = await execute(self._s(), q.head, (channel_id,))
        if not heads or heads[0]["last_message_id"] is None:
            return []
        head = int(heads[0]["last_message_id"])
        rows: list[Row] = []
        if after is not None:
            # Walk the channel's buckets from the cursor's up to the head's, until the page is
            # full.
            async with aclosing(self._buckets(channel_id, bucket_of(after), upwards=True)) as walk:
                async for bucket in walk:
                    if bucket > bucket_of(head):
                        break
                    params: tuple[object, ...] = (
                        channel_id,
                        bucket,
                        after,
                        head,
                        limit - len(rows),
                    )
                    rows += await execute(self._s(), q.ascending_in_bucket, params)
                    if len(rows) >= limit:
                        break
            return [_message(r) for r in rows]
        upper = head if before is None else min(head, before - 1)
        if upper <= 0:
            return []
        async with aclosing(self._buckets(channel_id, bucket_of(upper), upwards=False)) as walk:
            async for bucket in walk:
                params = (channel_id, bucket, 0, upper, limit - len(rows))
                rows += await execute(self._s(), q.descending_in_bucket, params)
                if len(rows) >= limit:
                    break
        rows.reverse()  # read newest first; pages are ascending
        return [_message(r) for r in rows]

    async def close(self) -> None:
        """Release connections (shuts down the store's driver session)."""
        session, self._session, self._statements = self._session, None, None
        if session is not None:
            await shutdown_scylla(session)

    async def _buckets(
        self, channel_id: str, start: int, *, upwards: bool
    ) -> AsyncGenerator[int, None]:
        """The channel's buckets from `start` (inclusive) onwards, nearest first. The walk ends
        at the channel's first (or last) bucket: only buckets that hold messages are listed."""
        q = self._q()
        while True:
            statement = q.buckets_up if upwards else q.buckets_down
            rows = await execute(self._s(), statement, (channel_id, start, _BUCKETS_PER_READ))
            for row in rows:
                yield int(row["bucket"])
            if len(rows) < _BUCKETS_PER_READ:
                return
            last = int(rows[-1]["bucket"])
            start = last + 1 if upwards else last - 1

    async def _all(self, requests: Iterable[tuple[Any, Sequence[object]]]) -> list[list[Row]]:
        """Run statements concurrently; results in request order."""
        session = self._s()
        return list(
            await asyncio.gather(*(execute(session, stmt, params) for stmt, params in requests))
        )

    def _s(self) -> Session:
        if self._session is None:
            raise RuntimeError("ScyllaMessageStore is not open (await open() first)")
        return self._session

    def _q(self) -> _Statements:
        if self._statements is None:
            raise RuntimeError("ScyllaMessageStore is not open (await open() first)")
        return self._statements


async def open_scylla_message_store(
    hosts: list[str], keyspace: str, *, port: int = CQL_PORT, local_dc: str | None = None
) -> ScyllaMessageStore:
    """A connected `ScyllaMessageStore` on an already migrated keyspace."""
    store = ScyllaMessageStore(hosts, keyspace, port=port, local_dc=local_dc)
    await store.open()
    return store


def _send_key(m: Message) -> SendKey:
    return (m.sender_device_id, m.client_msg_id)


def _head_timestamp(message_id: int) -> int:
    """The write timestamp of a channel head: the message's own time in microseconds, so the
    newest message's head survives (Scylla keeps the cell with the highest timestamp, and the
    larger value on a tie). Message times are real times: Scylla refuses timestamps more than
    three days ahead (restrict_future_timestamp), which a real clock never produces."""
    return id_unix_ms(message_id) * 1000


def _values(m: Message) -> tuple[object, ...]:
    return (
        m.channel_id,
        m.message_id,
        m.sender_id,
        m.sender_device_id,
        m.client_msg_id,
        m.text,
        m.sent_at,
    )


def _message(row: Row) -> Message:
    return Message(
        channel_id=str(row["channel_id"]),
        message_id=int(row["message_id"]),
        sender_id=str(row["sender_id"]),
        sender_device_id=str(row["sender_device_id"]),
        client_msg_id=str(row["client_msg_id"]),
        text=str(row["text"]),
        sent_at=str(row["sent_at"]),
    )
