"""The message store on Scylla (production; Postgres is the embedded default).

Tables (storage/scylla/schema.cql): `messages` partitioned by (channel, time bucket), and
`changes` (edits, deletes, reactions) partitioned the same way, so that history, which reads
messages only, never reads past changes; `message_sends` claimed with lightweight transactions,
`channel_buckets` listing the buckets a channel has rows in, and `channel_heads` holding each
channel's newest id (max-wins). A message row holds its reactions as one value.

The statements are in `storage/scylla/statements.py`, the mapping between messages and rows in
`storage/scylla/rows.py`; this module holds the store's reads and writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from cassandra.cluster import Session

from schemas.message import Message, with_reaction
from storage.buckets import bucket_of
from storage.protocols.messages import SendKey
from storage.scylla.rows import (
    base_values,
    head_timestamp,
    id_timestamp,
    merged,
    message_of,
    reactions_of,
    row_timestamp,
    send_key,
)
from storage.scylla.schema import check_keyspace
from storage.scylla.session import (
    CQL_PORT,
    Consistency,
    Row,
    connect_scylla,
    execute,
    shutdown_scylla,
)
from storage.scylla.statements import Statements, prepare_statements

_COUNT_READ_FACTOR = 4  # an unread count reads at most this many rows per message it counts
_COUNTS_AT_ONCE = 32
_MENTION_READ_ROWS = 2_000  # rows a channel's unread mentions are counted over, at most  # channels whose unread messages are counted at once
_ROWS_PER_READ = 500  # rows fetched at a time while a page walks a bucket
_BUCKETS_PER_READ = 16  # bucket ids fetched at a time while a page walks a channel's buckets


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
        consistency: Consistency = "LOCAL_QUORUM",
    ) -> None:
        if not hosts:
            raise ValueError("at least one Scylla host is needed")
        self._hosts = list(hosts)
        self._consistency: Consistency = consistency
        self._keyspace = check_keyspace(keyspace)
        self._port = port
        self._local_dc = local_dc
        self._session: Session | None = None
        self._statements: Statements | None = None

    async def open(self) -> None:
        """Connect and prepare the statements; the keyspace's tables must exist."""
        if self._session is not None:
            raise RuntimeError("ScyllaMessageStore is already open")
        session = await connect_scylla(
            self._hosts, port=self._port, local_dc=self._local_dc, consistency=self._consistency
        )
        try:
            self._statements = await prepare_statements(session, self._keyspace)
        except BaseException:
            await shutdown_scylla(session)
            raise
        self._session = session

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        """Persist messages none of whose send keys is stored yet, and return True; if any is,
        store nothing and return False. Scylla has no atomic multi-row write, so this is a
        lookup, then the idempotent insert (two round trips, as before)."""
        if await self.find_sent([send_key(m) for m in messages]):
            return False
        await self.insert(messages)
        return True

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
            claimers.setdefault(send_key(m), m)
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
            holder, fresh = held[send_key(m)]
            if m.message_id == holder:
                stored.setdefault(send_key(m), (m, fresh))
        if not stored:
            return
        # A bucket is listed before its rows are written: paging only reads listed buckets,
        # and a listed bucket that is still empty costs one read, never a missed message.
        listed = {(m.channel_id, bucket_of(m.message_id)) for m, _ in stored.values()}
        await self._all((q.list_bucket, channel_bucket) for channel_bucket in listed)
        # A send claimed earlier by this same id (a retry, or a replay) may be stored already:
        # left as it is, and written if an earlier attempt stopped between claim and row. Read
        # first, then written: each channel has one writer (its messages partition).
        earlier = [m for m, fresh in stored.values() if not fresh]
        present = await self._rows_by_id([(m.channel_id, m.message_id) for m in earlier])
        there = {send_key(m) for m, row in zip(earlier, present, strict=True) if row}
        writes = [m for key, (m, _) in stored.items() if key not in there]
        # Every write to a message row carries a timestamp from the id that writes it: the
        # row's own for the row, the change's for a change, so a change always wins over its
        # message's row, and a later change over an earlier one, however often each is written
        # (a retry, a replay).
        await self._all(
            (
                (
                    q.insert_message,
                    (
                        bucket_of(m.message_id),
                        *base_values(m),
                        m.reply_to,
                        m.mentions,
                        row_timestamp(m),
                    ),
                )
                if m.kind == "message"
                else (
                    q.insert_change,
                    (
                        bucket_of(m.message_id),
                        *base_values(m),
                        m.kind,
                        m.target_id,
                        m.emoji,
                        m.removed,
                        m.refused,
                        row_timestamp(m),
                    ),
                )
            )
            for m in writes
        )
        # Heads move after the rows exist, so a head never names a message a reader cannot get.
        heads: dict[str, int] = {}
        for m, _ in stored.values():
            heads[m.channel_id] = max(heads.get(m.channel_id, 0), m.message_id)
        await self._all(
            (q.advance_head, (head_timestamp(message_id), message_id, channel_id))
            for channel_id, message_id in heads.items()
        )
        # Changes change their messages, one after another in id order, also those stored
        # already (an earlier attempt may have stopped before changing the message): one
        # writer per channel (its messages partition), so reading a message before changing it
        # is safe, and changing it again is harmless.
        changes = sorted((m for m, _ in stored.values() if m.kind != "message"), key=_id)
        for change in changes:
            await self._apply(change)
        await self._count_replies([m for m, _ in stored.values() if m.reply_to is not None])

    async def _count_replies(self, replies: Sequence[Message]) -> None:
        """List each reply under its message, then set each answered message's reply count
        from the listed replies, written with the timestamp of the newest one counted: counted,
        not incremented, so a repeat or a replay leaves the same count, and an older count
        never overwrites a newer one."""
        if not replies:
            return
        q = self._q()
        await self._all((q.add_reply, (m.channel_id, m.reply_to, m.message_id)) for m in replies)
        answered = sorted({(m.channel_id, m.reply_to) for m in replies if m.reply_to})
        counts = await self._all((q.count_replies, key) for key in answered)
        targets = await self._all(
            (q.message, (channel_id, bucket_of(i), i)) for channel_id, i in answered
        )
        writes = []
        for (channel_id, i), count, target in zip(answered, counts, targets, strict=True):
            if not target or not count or count[0]["newest"] is None:
                continue  # an UPDATE of a missing row would make one
            at = id_timestamp(int(count[0]["newest"]))
            writes.append(
                (
                    q.set_reply_count,
                    (at, count[0]["n"], count[0]["newest"], channel_id, bucket_of(i), i),
                )
            )
        await self._all(writes)

    async def _apply(self, change: Message) -> None:
        q, session = self._q(), self._s()
        assert change.target_id is not None
        target_key = (change.channel_id, bucket_of(change.target_id), change.target_id)
        found = await execute(session, q.target, target_key)
        if not found or (found[0]["kind"] or "message") != "message":
            return  # the gateway names only stored messages: nothing to change
        target, at = found[0], row_timestamp(change)
        if change.kind == "edit":
            if target["deleted"]:
                # After a delete, an edit keeps no text either (its own row, a tick later).
                await self._blank(at + 1, change.channel_id, [change.message_id])
                return
            params = (at, change.text, change.sent_at, {change.message_id}, *target_key)
            await execute(session, q.apply_edit, params)
        elif change.kind == "delete":
            # The text goes from the store: the message's, and that of every edit of it; and
            # the message is unpinned.
            await execute(session, q.apply_delete, (at, *target_key))
            await execute(session, q.remove_pin, (at, change.channel_id, change.target_id))
            await self._blank(at, change.channel_id, sorted(target["edits"] or ()))
        elif change.kind in ("pin", "unpin"):
            if change.refused is not None or target["deleted"]:
                return  # beyond the channel's cap, or deleted: it pins nothing
            # Written with the change's timestamp: the newest pin or unpin wins.
            if change.kind == "pin":
                pinned = (at, change.sender_id, change.sent_at, *target_key)
                await execute(session, q.set_pinned, pinned)
                pin = (change.channel_id, change.target_id, change.message_id, at)
                await execute(session, q.add_pin, pin)
            else:
                await execute(session, q.set_pinned, (at, None, None, *target_key))
                await execute(session, q.remove_pin, (at, change.channel_id, change.target_id))
        elif not target["deleted"]:
            # The message's reactions are one value, written with the reaction's timestamp: a
            # reaction applied again, or after a later one, loses to the later write. Reading
            # then writing is safe: each channel has one writer.
            assert change.emoji is not None
            after = with_reaction(
                reactions_of(target), change.sender_id, change.emoji, change.removed
            )
            reactions = {e: set(who) for e, who in after.items()} or None
            await execute(session, q.apply_reaction, (at, reactions, *target_key))

    async def _blank(self, at: int, channel_id: str, ids: Sequence[int]) -> None:
        """Blank the text of these change rows, in the table each is in (edits stored before
        changes had their own table are in `messages`; an UPDATE of a missing row would make
        one, so each row is looked up first)."""
        q = self._q()
        found = await self._all(
            (statement, (channel_id, bucket_of(i), i))
            for i in ids
            for statement in (q.change, q.message)
        )
        writes = []
        for n, i in enumerate(ids):
            in_changes, in_messages = found[2 * n], found[2 * n + 1]
            if in_changes:
                writes.append((q.blank_change_text, (at, channel_id, bucket_of(i), i)))
            if in_messages:
                writes.append((q.blank_text, (at, channel_id, bucket_of(i), i)))
        await self._all(writes)

    async def _rows_by_id(self, keys: Sequence[tuple[str, int]]) -> list[Row | None]:
        """The row of each (channel, id), a message or a change, or None."""
        q = self._q()
        found = await self._all(
            (statement, (channel_id, bucket_of(i), i))
            for channel_id, i in keys
            for statement in (q.message, q.change)
        )
        rows: list[Row | None] = []
        for n in range(len(keys)):
            in_messages, in_changes = found[2 * n], found[2 * n + 1]
            rows.append(in_messages[0] if in_messages else in_changes[0] if in_changes else None)
        return rows

    async def find_sent(self, keys: Sequence[SendKey]) -> dict[SendKey, Message]:
        """Messages already stored for these idempotency keys."""
        if not keys:
            return {}
        q = self._q()
        unique = list(dict.fromkeys(keys))
        claims = await self._all((q.sent_id, key) for key in unique)
        claimed = [rows[0] for rows in claims if rows]
        found = await self._rows_by_id(
            [(str(c["channel_id"]), int(c["message_id"])) for c in claimed]
        )
        # A claim whose row is not written yet (a send in flight) is not "sent": absent, as in
        # Postgres, where the join finds no row.
        messages = [message_of(row) for row in found if row]
        return {send_key(m): m for m in messages}

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

    async def _count_after(
        self, channel_id: str, head: int, after: int, not_from: str, cap: int
    ) -> int:
        """How many of the channel's messages above `after` were not sent by `not_from`, counted
        up to `cap`: an unread count. Reads senders only, at most `_COUNT_READ_FACTOR * cap` of
        them (a user's own messages are read and skipped; Scylla cannot filter them out)."""
        return await self._count_rows(
            channel_id,
            head,
            after,
            self._q().senders_in_bucket,
            _COUNT_READ_FACTOR * cap,
            cap,
            lambda r: r["sender_id"] != not_from,
        )

    async def _count_rows(
        self,
        channel_id: str,
        head: int,
        after: int,
        statement: Any,
        budget: int,
        cap: int,
        wanted: Callable[[Row], bool],
    ) -> int:
        """How many living messages above `after` (changes and deleted ones left out) `wanted`
        keeps, up to `cap`, reading the channel's buckets upwards to `head` (its newest id)
        with `statement` and at most `budget` rows."""
        if cap <= 0:
            return 0
        count = 0
        async with aclosing(self._buckets(channel_id, bucket_of(after), upwards=True)) as walk:
            async for bucket in walk:
                if bucket > bucket_of(head) or count >= cap or budget <= 0:
                    break
                params = (channel_id, bucket, after, head, budget)
                rows = await execute(self._s(), statement, params)
                budget -= len(rows)
                count += sum(
                    1
                    for r in rows
                    if (r["kind"] or "message") == "message" and not r["deleted"] and wanted(r)
                )
        return min(count, cap)

    async def unread_and_mentions(
        self, after: Mapping[str, int], *, reader: str, cap: int
    ) -> dict[str, tuple[int, int]]:
        """For each channel of `after`, its unread count for `reader` and how many of those
        messages mention `reader`, each up to `cap`; the mentions are read only in channels
        with anything unread. Channels are counted concurrently, `_COUNTS_AT_ONCE` at a time."""
        at_once = asyncio.Semaphore(_COUNTS_AT_ONCE)

        async def one(channel_id: str) -> tuple[int, int]:
            async with at_once:
                head = await self._head(channel_id)
                if head is None:
                    return 0, 0
                since = after[channel_id]
                unread = await self._count_after(channel_id, head, since, reader, cap)
                if unread == 0:
                    return 0, 0
                return unread, await self._mentions_after(channel_id, head, since, reader, cap)

        channels = list(after)
        counts = await asyncio.gather(*(one(c) for c in channels))
        return dict(zip(channels, counts, strict=True))

    async def _mentions_after(
        self, channel_id: str, head: int, after: int, of: str, cap: int
    ) -> int:
        """How many of the channel's messages above `after` mention `of`, up to `cap`. Reads
        the mention lists of at most `_MENTION_READ_ROWS` rows (Scylla cannot filter them): the
        mentions among the newest unread messages beyond that are not counted."""
        return await self._count_rows(
            channel_id,
            head,
            after,
            self._q().mentions_in_bucket,
            _MENTION_READ_ROWS,
            cap,
            lambda r: bool(r["mentions"]) and of in r["mentions"],
        )

    async def get(self, channel_id: str, message_id: int) -> Message | None:
        """One row in its latest state, if it is stored."""
        (row,) = await self._rows_by_id([(channel_id, message_id)])
        return None if row is None else message_of(row)

    async def get_many(self, channel_id: str, message_ids: Sequence[int]) -> dict[int, Message]:
        """The rows of these ids that are stored, in their latest state, by id (read
        concurrently: one partition per query)."""
        ids = sorted(set(message_ids))
        rows = await self._rows_by_id([(channel_id, i) for i in ids])
        return {i: message_of(row) for i, row in zip(ids, rows, strict=True) if row is not None}

    async def deleted_rows(self, channel_id: str, message_id: int) -> list[Message]:
        """A deleted message and its edits as stored (texts blank), in id order."""
        q, session = self._q(), self._s()
        found = await execute(session, q.target, (channel_id, bucket_of(message_id), message_id))
        if not found or (found[0]["kind"] or "message") != "message" or not found[0]["deleted"]:
            return []
        edits = sorted(found[0]["edits"] or ())
        rows = await self._rows_by_id([(channel_id, edit) for edit in edits])
        return [message_of(found[0])] + [message_of(row) for row in rows if row is not None]

    async def page(
        self,
        channel_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
        changes: bool = True,
        thread: int | None = None,
    ) -> list[Message]:
        """Up to `limit` rows ascending by id: the newest below `before`, the oldest above
        `after`, or the newest of all when neither is given; messages only unless `changes`;
        only the replies to message `thread` when it is given (their ids from `replies`)."""
        if limit <= 0:
            return []
        # A page reads no further than the channel's head. The rows of one insert become
        # visible one by one, in any order, and the head moves only once all of them exist:
        # below the head every message is there, above it one may be missing while a later one
        # shows. A reader paging `after` the newer one would skip the missing one for good.
        head = await self._head(channel_id)
        if head is None:
            return []
        upwards = after is not None
        if after is not None:
            low, high = after, head
        else:
            low, high = 0, head if before is None else min(head, before - 1)
        if thread is not None:
            return await self._thread(channel_id, thread, low, high, upwards, limit)
        kept: list[Row] = []
        rows = self._rows(channel_id, low, high, upwards=upwards, changes=False)
        if changes:
            also = self._rows(channel_id, low, high, upwards=upwards, changes=True)
            rows = merged(rows, also, upwards=upwards)
        async with aclosing(rows) as walk:
            async for row in walk:
                # Changes stored before they had their own table are in `messages` too.
                if changes or (row["kind"] or "message") == "message":
                    kept.append(row)
                    if len(kept) >= limit:
                        break
        if not upwards:
            kept.reverse()  # read newest first; pages are ascending
        return [message_of(r) for r in kept]

    async def sent_by(
        self, channel_id: str, sender_id: str, *, after: int, limit: int
    ) -> list[Message]:
        """Up to `limit` of the messages `sender_id` sent in the channel (not changes), the
        oldest with ids above `after`, ascending, in their latest state. The channel's
        partitions hold every sender's rows: they are read a chunk at a time (`_rows`) and
        filtered here, so memory holds a chunk and the page, never the channel."""
        if limit <= 0:
            return []
        head = await self._head(channel_id)
        if head is None:
            return []
        kept: list[Row] = []
        rows = self._rows(channel_id, after, head, upwards=True, changes=False)
        async with aclosing(rows) as walk:
            async for row in walk:
                if (row["kind"] or "message") == "message" and row["sender_id"] == sender_id:
                    kept.append(row)
                    if len(kept) >= limit:
                        break
        return [message_of(r) for r in kept]

    async def _thread(
        self, channel_id: str, thread: int, low: int, high: int, upwards: bool, limit: int
    ) -> list[Message]:
        """Up to `limit` replies to `thread` with ids in (low, high], nearest first from `low`
        upwards or from `high` downwards, ascending."""
        if high <= low:
            return []
        q = self._q()
        statement = q.replies_up if upwards else q.replies_down
        listed = await execute(self._s(), statement, (channel_id, thread, low, high, limit))
        ids = sorted(int(r["message_id"]) for r in listed)
        rows = await self._all((q.message, (channel_id, bucket_of(i), i)) for i in ids)
        return [message_of(found[0]) for found in rows if found]

    async def _head(self, channel_id: str) -> int | None:
        """The channel's newest id: every row at or below it is stored."""
        heads = await execute(self._s(), self._q().head, (channel_id,))
        if not heads or heads[0]["last_message_id"] is None:
            return None
        return int(heads[0]["last_message_id"])

    async def _rows(
        self, channel_id: str, low: int, high: int, *, upwards: bool, changes: bool
    ) -> AsyncGenerator[Row, None]:
        """The channel's rows with ids in (low, high], of `messages` or of `changes`, nearest
        first from `low` upwards or from `high` downwards, read a chunk at a time across the
        channel's buckets."""
        if high <= low:
            return
        q, session = self._q(), self._s()
        start = bucket_of(low) if upwards else bucket_of(high)
        if changes:
            statement = q.changes_ascending_in_bucket if upwards else q.changes_descending_in_bucket
        else:
            statement = q.ascending_in_bucket if upwards else q.descending_in_bucket
        async with aclosing(self._buckets(channel_id, start, upwards=upwards)) as walk:
            async for bucket in walk:
                if bucket > bucket_of(high) or bucket < bucket_of(low):
                    return
                while True:
                    params = (channel_id, bucket, low, high, _ROWS_PER_READ)
                    rows = await execute(session, statement, params)
                    for row in rows:
                        yield row
                    if len(rows) < _ROWS_PER_READ:
                        break  # the bucket is read to its end
                    last = int(rows[-1]["message_id"])
                    low, high = (last, high) if upwards else (low, last - 1)

    async def pins(self, channel_id: str) -> list[Message]:
        """The channel's pinned messages, the most recently pinned first (listed in `pins`,
        read from `messages`)."""
        q = self._q()
        listed = await execute(self._s(), q.pinned, (channel_id,))
        order = sorted(listed, key=lambda r: -int(r["pin_id"]))
        ids = [int(r["message_id"]) for r in order]
        rows = await self._all((q.message, (channel_id, bucket_of(i), i)) for i in ids)
        found = [message_of(r[0]) for r in rows if r]
        return [m for m in found if m.pinned_by is not None]

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

    def _q(self) -> Statements:
        if self._statements is None:
            raise RuntimeError("ScyllaMessageStore is not open (await open() first)")
        return self._statements


async def open_scylla_message_store(
    hosts: list[str],
    keyspace: str,
    *,
    port: int = CQL_PORT,
    local_dc: str | None = None,
    consistency: Consistency = "LOCAL_QUORUM",
) -> ScyllaMessageStore:
    """A connected `ScyllaMessageStore` on an already migrated keyspace."""
    store = ScyllaMessageStore(
        hosts, keyspace, port=port, local_dc=local_dc, consistency=consistency
    )
    await store.open()
    return store


def _id(m: Message) -> int:
    return m.message_id
