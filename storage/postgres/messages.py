"""The message store on Postgres (the embedded default; Scylla in production)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
import psycopg

from schemas.ids import SEQUENCE_BITS
from schemas.message import Kind, Message, Refusal
from storage.buckets import BUCKET_MS, bucket_of
from storage.postgres.pool import Pool, connection
from storage.protocols.messages import SendKey

_COLUMNS = (
    "channel_id, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at,"
    " kind, target_id, emoji, removed, edited_at, deleted, refused, reactions, reply_to,"
    " reply_count, last_reply_id, pinned_by, pinned_at, mentions"
)


class PostgresMessageStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def insert(self, messages: Sequence[Message]) -> None:
        """Persist messages. Idempotent: a message already stored under its id, or a send whose
        idempotency key is already stored, is left as it is."""
        await self._insert(messages, new=False)

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        """Persist messages none of whose send keys is stored yet, and return True; if any is,
        store nothing and return False (the caller then looks them up: `find_sent`)."""
        try:
            await self._insert(messages, new=True)
        except _KeyTaken:
            return False
        return True

    async def _insert(self, messages: Sequence[Message], *, new: bool) -> None:
        if not messages:
            return
        changes = sorted((m for m in messages if m.kind != "message"), key=_id)
        answered = sorted({(m.channel_id, m.reply_to) for m in messages if m.reply_to is not None})
        async with connection(self._pool) as conn:
            try:
                if not changes and not answered:
                    # Sends only (the common batch): one statement, atomic by itself, one round
                    # trip; a transaction would add two (BEGIN and COMMIT).
                    await _insert_rows_txn(conn, messages, new)
                    return
                async with conn.transaction():
                    await _insert_rows_txn(conn, messages, new)
                    if answered:
                        await _count_replies_txn(conn, answered)
                    # Changes, in id order, each once its own row is stored (a change whose
                    # send was stored under another id is that one's). Each application is
                    # conditional, so a repeat or a replay changes nothing, and a later change
                    # always wins.
                    for change in changes:
                        await _apply_change_txn(conn, change)
            except psycopg.errors.UniqueViolation as exc:
                if new and exc.diag.table_name == "message_sends":
                    raise _KeyTaken from None  # the statement (or transaction) wrote nothing
                raise

    async def find_sent(self, keys: Sequence[SendKey]) -> dict[SendKey, Message]:
        """Messages already stored for these idempotency keys."""
        if not keys:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {', '.join('m.' + c for c in _COLUMNS.split(', '))}"
                " FROM unnest(%s::text[], %s::text[]) AS k(device, cmid)"
                " JOIN message_sends s ON s.sender_device_id = k.device AND s.client_msg_id = k.cmid"
                " JOIN messages m ON m.channel_id = s.channel_id"
                "   AND m.bucket = (s.message_id >> %s) / %s AND m.message_id = s.message_id",
                ([k[0] for k in keys], [k[1] for k in keys], SEQUENCE_BITS, BUCKET_MS),
            )
            found = [_message(r) for r in await cur.fetchall()]
        return {(m.sender_device_id, m.client_msg_id): m for m in found}

    async def last_message_ids(self, channel_ids: Sequence[str]) -> dict[str, int]:
        """The newest message id of each channel that has messages."""
        if not channel_ids:
            return {}
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT c.id, (SELECT m.message_id FROM messages m WHERE m.channel_id = c.id"
                "              ORDER BY m.bucket DESC, m.message_id DESC LIMIT 1)"
                " FROM unnest(%s::text[]) AS c(id)",
                (list(channel_ids),),
            )
            return {str(r[0]): int(str(r[1])) for r in await cur.fetchall() if r[1] is not None}

    async def unread_and_mentions(
        self, after: Mapping[str, int], *, reader: str, cap: int
    ) -> dict[str, tuple[int, int]]:
        """For each channel of `after`, how many of its messages above its id were not sent by
        `reader` (unread) and how many of those mention `reader`, each counted up to `cap`, in
        one statement (an index range per channel, `cap` rows at most each; the mentions: over
        the messages that mention anyone, `messages_mentioning`)."""
        if not after:
            return {}
        channels = list(after)
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT a.channel_id, (SELECT count(*) FROM (SELECT 1 FROM messages m"
                "   WHERE m.channel_id = a.channel_id AND m.bucket >= a.bucket"
                "   AND m.message_id > a.after AND m.sender_id <> %(reader)s"
                "   AND m.kind = 'message' AND NOT m.deleted LIMIT %(cap)s) AS unread),"
                " (SELECT count(*) FROM (SELECT 1 FROM messages m"
                "   WHERE m.channel_id = a.channel_id AND m.bucket >= a.bucket"
                "   AND m.message_id > a.after AND m.mentions IS NOT NULL AND m.kind = 'message'"
                "   AND %(reader)s = ANY(m.mentions) AND NOT m.deleted LIMIT %(cap)s) AS mentioned)"
                " FROM unnest(%(channels)s::text[], %(after)s::bigint[], %(buckets)s::bigint[])"
                "   AS a(channel_id, after, bucket)",
                {
                    "reader": reader,
                    "cap": cap,
                    "channels": channels,
                    "after": [after[c] for c in channels],
                    "buckets": [bucket_of(after[c]) for c in channels],
                },
            )
            counts = {str(r[0]): (int(str(r[1])), int(str(r[2]))) for r in await cur.fetchall()}
        return {c: counts.get(c, (0, 0)) for c in channels}

    async def get(self, channel_id: str, message_id: int) -> Message | None:
        """One row in its latest state, if it is stored."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket = %s"
                " AND message_id = %s",
                (channel_id, bucket_of(message_id), message_id),
            )
            row = await cur.fetchone()
        return None if row is None else _message(row)

    async def get_many(self, channel_id: str, message_ids: Sequence[int]) -> dict[int, Message]:
        """The rows of these ids that are stored, in their latest state, by id."""
        if not message_ids:
            return {}
        ids = sorted(set(message_ids))
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s"
                " AND bucket = ANY(%s::int[]) AND message_id = ANY(%s::bigint[])",
                (channel_id, sorted({bucket_of(i) for i in ids}), ids),
            )
            found = [_message(r) for r in await cur.fetchall()]
        return {m.message_id: m for m in found}

    async def deleted_rows(self, channel_id: str, message_id: int) -> list[Message]:
        """A deleted message and its edits as stored (texts blank), in id order."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %(channel)s AND ("
                "  (bucket = %(bucket)s AND message_id = %(id)s AND kind = 'message' AND deleted)"
                "  OR (target_id = %(id)s AND kind = 'edit' AND EXISTS (SELECT 1 FROM messages"
                "    WHERE channel_id = %(channel)s AND bucket = %(bucket)s"
                "    AND message_id = %(id)s AND kind = 'message' AND deleted))"
                ") ORDER BY message_id",
                {"channel": channel_id, "bucket": bucket_of(message_id), "id": message_id},
            )
            return [_message(r) for r in await cur.fetchall()]

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
        only the replies to message `thread` when it is given."""
        only = "" if changes and thread is None else " AND kind = 'message'"
        extra: tuple[object, ...] = ()
        if thread is not None:
            only += " AND reply_to = %s"
            extra = (thread,)
        if after is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket >= %s"
                f" AND message_id > %s{only} ORDER BY bucket, message_id LIMIT %s"
            )
            params: tuple[object, ...] = (channel_id, bucket_of(after), after, *extra, limit)
        elif before is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket <= %s"
                f" AND message_id < %s{only} ORDER BY bucket DESC, message_id DESC LIMIT %s"
            )
            params = (channel_id, bucket_of(before), before, *extra, limit)
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s{only}"
                " ORDER BY bucket DESC, message_id DESC LIMIT %s"
            )
            params = (channel_id, *extra, limit)
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql.encode(), params)
            rows = [_message(r) for r in await cur.fetchall()]
        if after is None:
            rows.reverse()
        return rows

    async def sent_by(
        self, channel_id: str, sender_id: str, *, after: int, limit: int
    ) -> list[Message]:
        """Up to `limit` of the messages `sender_id` sent in the channel (not changes), the
        oldest with ids above `after`, ascending, in their latest state."""
        sql = (
            f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket >= %s"
            " AND message_id > %s AND sender_id = %s AND kind = 'message'"
            " ORDER BY bucket, message_id LIMIT %s"
        )
        params = (channel_id, bucket_of(after), after, sender_id, limit)
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql.encode(), params)
            return [_message(r) for r in await cur.fetchall()]

    async def pins(self, channel_id: str) -> list[Message]:
        """The channel's pinned messages, the most recently pinned first."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s"
                " AND pinned_by IS NOT NULL ORDER BY pin_id DESC",
                (channel_id,),
            )
            return [_message(r) for r in await cur.fetchall()]

    async def close(self) -> None:
        """Release connections (the pool belongs to the caller)."""


class _KeyTaken(Exception):
    """A send key of `insert_new` was stored already."""


async def _insert_rows_txn(conn: Any, messages: Sequence[Message], new: bool) -> None:
    """Claim each send key and store the rows whose claim this statement made. `new`: a key
    claimed already fails the whole statement (UniqueViolation) instead of being passed over."""
    # The rows travel as one JSON parameter (encoded by orjson, parsed by Postgres), not as
    # a dozen arrays adapted value by value in Python: that adaptation was most of the
    # pipeline's cost per batch.
    rows = orjson.dumps(
        [
            {
                "d": m.sender_device_id,
                "c": m.client_msg_id,
                "ch": m.channel_id,
                "id": m.message_id,
                "b": bucket_of(m.message_id),
                "s": m.sender_id,
                "tx": m.text,
                "at": m.sent_at,
                "k": m.kind,
                "tg": m.target_id,
                "e": m.emoji,
                "r": m.removed,
                "rf": m.refused,
                "rt": m.reply_to,
                "mn": m.mentions,
            }
            for m in messages
        ]
    ).decode()
    # The send key is claimed first; only the id that holds the claim is stored, so two
    # writers racing on one send can never store it twice under different ids. One
    # statement: the claims it made are what its RETURNING gives the row insert. Within one
    # statement the first row of a key claims it (rows are read in order).
    await conn.execute(
        "WITH t AS MATERIALIZED ("
        "  SELECT * FROM json_to_recordset(%s::json) AS t(d text, c text, ch text, id bigint,"
        "    b int, s text, tx text, at text, k text, tg bigint, e text, r boolean, rf text,"
        "    rt bigint, mn text[])"
        "), claimed AS ("
        "  INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id, message_id)"
        "  SELECT d, c, ch, id FROM t"
        + ("" if new else "  ON CONFLICT DO NOTHING")
        + "  RETURNING sender_device_id, client_msg_id, message_id"
        ")"
        " INSERT INTO messages (channel_id, bucket, message_id, sender_id, sender_device_id,"
        " client_msg_id, text, sent_at, kind, target_id, emoji, removed, refused, reply_to,"
        " mentions)"
        " SELECT t.ch, t.b, t.id, t.s, t.d, t.c, t.tx, t.at, t.k, t.tg, t.e, t.r, t.rf, t.rt, t.mn"
        " FROM t JOIN claimed s ON s.sender_device_id = t.d AND s.client_msg_id = t.c"
        "   AND s.message_id = t.id"
        " ON CONFLICT DO NOTHING",
        (rows,),
    )


async def _count_replies_txn(conn: Any, answered: Sequence[tuple[str, int]]) -> None:
    """Set the reply count of each answered message from its stored replies (in the caller's
    transaction, after the replies' rows): counted, not incremented, so a repeat or a replay
    of a reply leaves the same count."""
    await conn.execute(
        "UPDATE messages m SET (reply_count, last_reply_id) = (SELECT count(*),"
        "   max(r.message_id) FROM messages r"
        "   WHERE r.channel_id = m.channel_id AND r.reply_to = m.message_id)"
        " FROM unnest(%s::text[], %s::bigint[]) AS a(channel_id, id)"
        " WHERE m.channel_id = a.channel_id AND m.bucket = (a.id >> %s) / %s"
        "   AND m.message_id = a.id AND m.kind = 'message'",
        ([c for c, _ in answered], [i for _, i in answered], SEQUENCE_BITS, BUCKET_MS),
    )


def _id(m: Message) -> int:
    return m.message_id


_STORED = (
    " AND EXISTS (SELECT 1 FROM messages c WHERE c.channel_id = %(channel)s"
    " AND c.bucket = %(change_bucket)s AND c.message_id = %(change)s)"
)


async def _apply_change_txn(conn: Any, change: Message) -> None:
    """Change the message a change row names (in the caller's transaction)."""
    assert change.target_id is not None
    params = {
        "channel": change.channel_id,
        "bucket": bucket_of(change.target_id),
        "target": change.target_id,
        "change": change.message_id,
        "change_bucket": bucket_of(change.message_id),
        "text": change.text,
        "at": change.sent_at,
        "sender": change.sender_id,
        "emoji": change.emoji,
        "active": not change.removed,
    }
    target = (
        "channel_id = %(channel)s AND bucket = %(bucket)s AND message_id = %(target)s"
        " AND kind = 'message'"
    )
    if change.kind == "edit":
        await conn.execute(
            "UPDATE messages SET text = %(text)s, edited_at = %(at)s, edit_id = %(change)s"
            f" WHERE {target} AND NOT deleted AND coalesce(edit_id, 0) < %(change)s" + _STORED,
            params,
        )
        # An edit that came after its message was deleted keeps no text either.
        await conn.execute(
            "UPDATE messages SET text = '' WHERE channel_id = %(channel)s"
            " AND bucket = %(change_bucket)s AND message_id = %(change)s"
            f" AND EXISTS (SELECT 1 FROM messages WHERE {target} AND deleted)",
            params,
        )
    elif change.kind == "delete":
        # The text goes from the store: the message's, and that of every edit of it.
        await conn.execute(
            "UPDATE messages SET text = '', deleted = true, reactions = NULL, pinned_by = NULL,"
            f" pinned_at = NULL WHERE {target}" + _STORED,
            params,
        )
        await conn.execute(
            "UPDATE messages SET text = '' WHERE channel_id = %(channel)s"
            " AND target_id = %(target)s AND kind = 'edit'" + _STORED,
            params,
        )
    elif change.kind in ("pin", "unpin"):
        if change.refused is not None:
            return  # beyond the channel's cap: it pins nothing
        pinned = change.kind == "pin"
        # The newest pin or unpin wins, however often and in whatever order they are applied.
        await conn.execute(
            "UPDATE messages SET pinned_by = %(by)s, pinned_at = %(pinned_at)s,"
            f" pin_id = %(change)s WHERE {target} AND NOT deleted"
            " AND coalesce(pin_id, 0) < %(change)s" + _STORED,
            {
                **params,
                "by": change.sender_id if pinned else None,
                "pinned_at": change.sent_at if pinned else None,
            },
        )
    else:
        # The message's reactions are its state (emoji -> sorted user ids), set with the id of
        # the reaction that set them last: one row, however often reactions come and go, and a
        # reaction applied again (or after a later one) changes nothing. NULL when none.
        await conn.execute(
            "UPDATE messages SET reactions_id = %(change)s, reactions = ("
            "  SELECT jsonb_object_agg(emoji, who) FROM ("
            "    SELECT emoji, jsonb_agg(user_id ORDER BY user_id) AS who FROM ("
            "      SELECT e.key, u.user_id"
            "      FROM jsonb_each(coalesce(messages.reactions, '{}')) AS e(key, users),"
            "        jsonb_array_elements_text(e.users) AS u(user_id)"
            "      WHERE (e.key, u.user_id) <> (%(emoji)s::text, %(sender)s::text)"
            "      UNION ALL SELECT %(emoji)s::text, %(sender)s::text WHERE %(active)s::boolean"
            "    ) AS pairs(emoji, user_id) GROUP BY emoji"
            "  ) AS grouped"
            f") WHERE {target} AND NOT deleted AND coalesce(reactions_id, 0) < %(change)s"
            + _STORED,
            params,
        )


def _message(row: tuple[object, ...]) -> Message:
    reactions = cast(dict[str, list[str]] | None, row[14])
    return Message(
        channel_id=str(row[0]),
        message_id=int(str(row[1])),
        sender_id=str(row[2]),
        sender_device_id=str(row[3]),
        client_msg_id=str(row[4]),
        text=str(row[5]),
        sent_at=str(row[6]),
        kind=cast(Kind, row[7]),
        target_id=None if row[8] is None else int(str(row[8])),
        emoji=None if row[9] is None else str(row[9]),
        removed=bool(row[10]),
        edited_at=None if row[11] is None else str(row[11]),
        deleted=bool(row[12]),
        refused=cast(Refusal | None, row[13]),
        reactions={e: sorted(who) for e, who in sorted(reactions.items())}
        if reactions and row[7] == "message" and not row[12]
        else None,
        reply_to=None if row[15] is None else int(str(row[15])),
        reply_count=int(str(row[16])),
        last_reply_id=None if row[17] is None else int(str(row[17])),
        pinned_by=None if row[18] is None else str(row[18]),
        pinned_at=None if row[19] is None else str(row[19]),
        mentions=[str(u) for u in cast(list[str], row[20])] if row[20] else None,
    )
