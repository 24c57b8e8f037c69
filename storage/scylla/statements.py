"""The store's CQL statements, prepared once a session opens (storage/scylla/schema.cql)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import Session

from storage.scylla.session import prepare

_BASE = 'channel_id, message_id, sender_id, sender_device_id, client_msg_id, "text", sent_at'
_COLUMNS = (
    f"{_BASE}, kind, target_id, emoji, removed, edited_at, deleted, refused, reactions, mentions"
)
# `messages` only: `changes` has no reply columns.
_MESSAGE_COLUMNS = f"{_COLUMNS}, reply_to, reply_count, last_reply_id, pinned_by, pinned_at"


@dataclass(frozen=True)
class Statements:
    """The prepared statements, one per name of `_cql`."""

    claim_send: Any
    list_bucket: Any
    insert_message: Any
    insert_change: Any
    apply_edit: Any
    blank_text: Any
    apply_delete: Any
    blank_change_text: Any
    apply_reaction: Any
    target: Any
    advance_head: Any
    sent_id: Any
    message: Any
    change: Any
    head: Any
    buckets_down: Any
    buckets_up: Any
    ascending_in_bucket: Any
    senders_in_bucket: Any
    mentions_in_bucket: Any
    descending_in_bucket: Any
    changes_ascending_in_bucket: Any
    changes_descending_in_bucket: Any
    add_reply: Any
    count_replies: Any
    set_reply_count: Any
    replies_up: Any
    replies_down: Any
    set_pinned: Any
    add_pin: Any
    remove_pin: Any
    pinned: Any


def _cql(ks: str) -> dict[str, str]:
    return {
        "claim_send": f"INSERT INTO {ks}.message_sends"
        " (sender_device_id, client_msg_id, channel_id, message_id) VALUES (?, ?, ?, ?)"
        " IF NOT EXISTS",
        "list_bucket": f"INSERT INTO {ks}.channel_buckets (channel_id, bucket) VALUES (?, ?)",
        "insert_message": f"INSERT INTO {ks}.messages (bucket, {_BASE}, reply_to, mentions)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
        "insert_change": f"INSERT INTO {ks}.changes (bucket, {_BASE}, kind, target_id, emoji,"
        " removed, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
        "apply_edit": f'UPDATE {ks}.messages USING TIMESTAMP ? SET "text" = ?, edited_at = ?,'
        " edits = edits + ? WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "blank_text": f"UPDATE {ks}.messages USING TIMESTAMP ? SET \"text\" = ''"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "blank_change_text": f"UPDATE {ks}.changes USING TIMESTAMP ? SET \"text\" = ''"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "apply_delete": f"UPDATE {ks}.messages USING TIMESTAMP ? SET \"text\" = '',"
        " deleted = true, reactions = null, pinned_by = null, pinned_at = null"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "apply_reaction": f"UPDATE {ks}.messages USING TIMESTAMP ? SET reactions = ?"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "target": f"SELECT {_MESSAGE_COLUMNS}, edits FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "advance_head": f"UPDATE {ks}.channel_heads USING TIMESTAMP ?"
        " SET last_message_id = ? WHERE channel_id = ?",
        "sent_id": f"SELECT channel_id, message_id FROM {ks}.message_sends"
        " WHERE sender_device_id = ? AND client_msg_id = ?",
        "message": f"SELECT {_MESSAGE_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "change": f"SELECT {_COLUMNS} FROM {ks}.changes"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "head": f"SELECT last_message_id FROM {ks}.channel_heads WHERE channel_id = ?",
        "buckets_down": f"SELECT bucket FROM {ks}.channel_buckets"
        " WHERE channel_id = ? AND bucket <= ? ORDER BY bucket DESC LIMIT ?",
        "buckets_up": f"SELECT bucket FROM {ks}.channel_buckets"
        " WHERE channel_id = ? AND bucket >= ? ORDER BY bucket ASC LIMIT ?",
        "ascending_in_bucket": f"SELECT {_MESSAGE_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id ASC LIMIT ?",
        "senders_in_bucket": f"SELECT sender_id, kind, deleted FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ? LIMIT ?",
        "mentions_in_bucket": f"SELECT mentions, kind, deleted FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ? LIMIT ?",
        "descending_in_bucket": f"SELECT {_MESSAGE_COLUMNS} FROM {ks}.messages"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id DESC LIMIT ?",
        "changes_ascending_in_bucket": f"SELECT {_COLUMNS} FROM {ks}.changes"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id ASC LIMIT ?",
        "changes_descending_in_bucket": f"SELECT {_COLUMNS} FROM {ks}.changes"
        " WHERE channel_id = ? AND bucket = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id DESC LIMIT ?",
        "set_pinned": f"UPDATE {ks}.messages USING TIMESTAMP ? SET pinned_by = ?, pinned_at = ?"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "add_pin": f"INSERT INTO {ks}.pins (channel_id, message_id, pin_id) VALUES (?, ?, ?)"
        " USING TIMESTAMP ?",
        "remove_pin": f"DELETE FROM {ks}.pins USING TIMESTAMP ?"
        " WHERE channel_id = ? AND message_id = ?",
        "pinned": f"SELECT message_id, pin_id FROM {ks}.pins WHERE channel_id = ?",
        "add_reply": f"INSERT INTO {ks}.replies (channel_id, reply_to, message_id)"
        " VALUES (?, ?, ?)",
        "count_replies": f"SELECT count(*) AS n, max(message_id) AS newest FROM {ks}.replies"
        " WHERE channel_id = ? AND reply_to = ?",
        "set_reply_count": f"UPDATE {ks}.messages USING TIMESTAMP ? SET reply_count = ?,"
        " last_reply_id = ?"
        " WHERE channel_id = ? AND bucket = ? AND message_id = ?",
        "replies_up": f"SELECT message_id FROM {ks}.replies WHERE channel_id = ?"
        " AND reply_to = ? AND message_id > ? AND message_id <= ? ORDER BY message_id ASC LIMIT ?",
        "replies_down": f"SELECT message_id FROM {ks}.replies WHERE channel_id = ?"
        " AND reply_to = ? AND message_id > ? AND message_id <= ?"
        " ORDER BY message_id DESC LIMIT ?",
    }


async def prepare_statements(session: Session, keyspace: str) -> Statements:
    """Every statement of the store, prepared on `session` for `keyspace`."""
    cql = _cql(keyspace)
    prepared = await asyncio.gather(*(prepare(session, text) for text in cql.values()))
    return Statements(**dict(zip(cql, prepared, strict=True)))
