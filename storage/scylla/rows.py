"""Between messages and the store's rows: the values written, their write timestamps, and
the rows read back as messages."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from schemas.ids import SEQUENCE_MASK, id_unix_ms
from schemas.message import Kind, Message
from storage.protocols.messages import SendKey
from storage.scylla.session import Row


def send_key(m: Message) -> SendKey:
    return (m.sender_device_id, m.client_msg_id)


def head_timestamp(message_id: int) -> int:
    """The write timestamp of a channel head: the message's own time in microseconds, so the
    newest message's head survives (Scylla keeps the cell with the highest timestamp, and the
    larger value on a tie). Message times are real times: Scylla refuses timestamps more than
    three days ahead (restrict_future_timestamp), which a real clock never produces."""
    return id_unix_ms(message_id) * 1000


def base_values(m: Message) -> tuple[object, ...]:
    return (
        m.channel_id,
        m.message_id,
        m.sender_id,
        m.sender_device_id,
        m.client_msg_id,
        m.text,
        m.sent_at,
    )


def row_timestamp(m: Message) -> int:
    """The write timestamp of a row, or of a change's writes: its id's millisecond in
    microseconds, plus its sequence within the millisecond, so later ids write later."""
    return id_timestamp(m.message_id)


def id_timestamp(message_id: int) -> int:
    """The write timestamp of a row or write of this id (`row_timestamp`)."""
    return id_unix_ms(message_id) * 1000 + (message_id & SEQUENCE_MASK) % 1000


async def merged(
    first: AsyncGenerator[Row, None], second: AsyncGenerator[Row, None], *, upwards: bool
) -> AsyncGenerator[Row, None]:
    """Two walks in id order (both up, or both down) as one; each is closed at the end."""
    async with aclosing(first), aclosing(second):
        a, b = await anext(first, None), await anext(second, None)
        while a is not None or b is not None:
            if a is not None and (b is None or _nearer(a, b, upwards)):
                yield a
                a = await anext(first, None)
            else:
                assert b is not None
                yield b
                b = await anext(second, None)


def _nearer(a: Row, b: Row, upwards: bool) -> bool:
    ids = int(a["message_id"]), int(b["message_id"])
    return ids[0] < ids[1] if upwards else ids[0] > ids[1]


def reactions_of(row: Row) -> dict[str, list[str]] | None:
    """A message row's reactions (a frozen map of sets in the driver's types) as plain ones."""
    stored = row["reactions"]
    if not stored:
        return None
    return {str(e): sorted(str(u) for u in who) for e, who in sorted(stored.items())}


def message_of(row: Row) -> Message:
    target = row["target_id"]
    kind: Kind = row["kind"] or "message"
    return Message(
        channel_id=str(row["channel_id"]),
        message_id=int(row["message_id"]),
        sender_id=str(row["sender_id"]),
        sender_device_id=str(row["sender_device_id"]),
        client_msg_id=str(row["client_msg_id"]),
        text=str(row["text"] or ""),
        sent_at=str(row["sent_at"]),
        kind=kind,
        target_id=None if target is None else int(target),
        emoji=row["emoji"],
        removed=bool(row["removed"]),
        refused=row["refused"],
        edited_at=row["edited_at"],
        deleted=bool(row["deleted"]),
        reactions=reactions_of(row) if kind == "message" and not row["deleted"] else None,
        reply_to=row.get("reply_to"),
        reply_count=row.get("reply_count") or 0,
        last_reply_id=row.get("last_reply_id"),
        pinned_by=row.get("pinned_by"),
        pinned_at=row.get("pinned_at"),
        mentions=[str(u) for u in row["mentions"]] if row["mentions"] else None,
    )
