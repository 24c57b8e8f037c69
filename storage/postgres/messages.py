"""The message store on Postgres (the embedded default; Scylla in production)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.ids import SEQUENCE_BITS
from schemas.message import Message
from storage.buckets import BUCKET_MS, bucket_of
from storage.postgres.pool import Pool, connection
from storage.protocols import SendKey

_COLUMNS = "channel_id, message_id, sender_id, sender_device_id, client_msg_id, text, sent_at"


class PostgresMessageStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def insert(self, messages: Sequence[Message]) -> None:
        """Persist messages. Idempotent: a message already stored under its id, or a send whose
        idempotency key is already stored, is left as it is."""
        if not messages:
            return
        cols = _columns(messages)
        async with connection(self._pool) as conn:
            # The send key is claimed first; only the id that holds the claim is stored, so two
            # writers racing on one send can never store it twice under different ids. One
            # statement (so one round trip, and atomic without BEGIN/COMMIT): the claims this
            # statement made are what its RETURNING gives the row insert.
            await conn.execute(
                "WITH claimed AS ("
                "  INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id,"
                "                             message_id)"
                "  SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])"
                "  ON CONFLICT DO NOTHING"
                "  RETURNING sender_device_id, client_msg_id, message_id"
                ")"
                " INSERT INTO messages (channel_id, bucket, message_id, sender_id, sender_device_id,"
                " client_msg_id, text, sent_at)"
                " SELECT t.channel_id, t.bucket, t.message_id, t.sender_id, t.sender_device_id,"
                "        t.client_msg_id, t.text, t.sent_at"
                " FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::text[], %s::text[], %s::text[],"
                "             %s::text[], %s::text[])"
                "   AS t(channel_id, bucket, message_id, sender_id, sender_device_id, client_msg_id,"
                "        text, sent_at)"
                " JOIN claimed s ON s.sender_device_id = t.sender_device_id"
                "   AND s.client_msg_id = t.client_msg_id AND s.message_id = t.message_id"
                " ON CONFLICT DO NOTHING",
                (
                    cols["sender_device_id"],
                    cols["client_msg_id"],
                    cols["channel_id"],
                    cols["message_id"],
                    cols["channel_id"],
                    [bucket_of(m.message_id) for m in messages],
                    cols["message_id"],
                    cols["sender_id"],
                    cols["sender_device_id"],
                    cols["client_msg_id"],
                    cols["text"],
                    cols["sent_at"],
                ),
            )

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

    async def count_after(self, channel_id: str, after: int, *, not_from: str, cap: int) -> int:
        """How many of the channel's messages above `after` were not sent by `not_from`, counted
        up to `cap`: an unread count."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM messages WHERE channel_id = %s"
                " AND bucket >= %s AND message_id > %s AND sender_id <> %s LIMIT %s) AS unread",
                (channel_id, bucket_of(after), after, not_from, cap),
            )
            row = await cur.fetchone()
            return int(str(row[0])) if row else 0

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
        if after is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket >= %s"
                " AND message_id > %s ORDER BY bucket, message_id LIMIT %s"
            )
            params: tuple[object, ...] = (channel_id, bucket_of(after), after, limit)
        elif before is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s AND bucket <= %s"
                " AND message_id < %s ORDER BY bucket DESC, message_id DESC LIMIT %s"
            )
            params = (channel_id, bucket_of(before), before, limit)
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE channel_id = %s"
                " ORDER BY bucket DESC, message_id DESC LIMIT %s"
            )
            params = (channel_id, limit)
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql.encode(), params)
            rows = [_message(r) for r in await cur.fetchall()]
        if after is None:
            rows.reverse()
        return rows

    async def close(self) -> None:
        """Release connections (the pool belongs to the caller)."""


def _columns(messages: Sequence[Message]) -> dict[str, list[object]]:
    return {
        "channel_id": [m.channel_id for m in messages],
        "message_id": [m.message_id for m in messages],
        "sender_id": [m.sender_id for m in messages],
        "sender_device_id": [m.sender_device_id for m in messages],
        "client_msg_id": [m.client_msg_id for m in messages],
        "text": [m.text for m in messages],
        "sent_at": [m.sent_at for m in messages],
    }


def _message(row: tuple[object, ...]) -> Message:
    return Message(
        channel_id=str(row[0]),
        message_id=int(str(row[1])),
        sender_id=str(row[2]),
        sender_device_id=str(row[3]),
        client_msg_id=str(row[4]),
        text=str(row[5]),
        sent_at=str(row[6]),
    )
