"""The stored messages: the log's sends, edits and deletes, kept for reading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from schemas.message import Message

SendKey = tuple[str, str]  # (sender_device_id, client_msg_id): a send's idempotency key


class MessageStore(Protocol):
    async def insert(self, messages: Sequence[Message]) -> None:
        """Persist a channel's rows (messages, and changes to messages). Idempotent: a row
        already stored under its id, or a send whose idempotency key is already stored, is left
        as it is.

        A change row also changes its message: an edit sets its text and `edited_at` (the
        newest edit wins; none once deleted), a delete leaves a tombstone (the texts of the
        message and of its edits are removed), a reaction adds or takes back one (user, emoji)
        (the newest wins). However often and in whatever order changes are applied, the
        message ends in the state their id order gives.

        A pin pins its message (`pinned_by`, `pinned_at`), an unpin unpins it (the newest of
        them wins; one `refused` changes nothing), and a delete unpins it.

        A reply (`reply_to`) sets its message's `reply_count` to the number of stored replies
        to it: a repeat or a replay leaves the same count. A `reply_count` or `quote` given
        on a row is not stored."""

    async def insert_new(self, messages: Sequence[Message]) -> bool:
        """`insert` for rows whose send keys are believed new (the pipeline's common case, in
        one round trip where the backend allows): True once they are stored; False, with
        nothing of the call stored, if any send key was stored already (the caller then asks
        `find_sent`, as for a repeat)."""

    async def get(self, channel_id: str, message_id: int) -> Message | None:
        """One row in its latest state, if it is stored."""

    async def get_many(self, channel_id: str, message_ids: Sequence[int]) -> dict[int, Message]:
        """The rows of these ids that are stored, in their latest state, by id: one statement
        on Postgres however many (the quotes of a page of replies)."""

    async def deleted_rows(self, channel_id: str, message_id: int) -> list[Message]:
        """A deleted message's rows as stored, in id order: the message and its edits, their
        texts blank (the copies that replace them in the stored topic's log). Empty unless the
        message is stored deleted."""

    async def find_sent(self, keys: Sequence[SendKey]) -> dict[SendKey, Message]:
        """Messages already stored for these idempotency keys."""

    async def last_message_ids(self, channel_ids: Sequence[str]) -> dict[str, int]:
        """The newest message id of each channel that has messages."""

    async def unread_and_mentions(
        self, after: Mapping[str, int], *, reader: str, cap: int
    ) -> dict[str, tuple[int, int]]:
        """For each channel of `after`: its unread count for `reader` (how many of its
        messages, not changes and not deleted, above its id were not sent by `reader`), and
        how many of those messages mention `reader` (`Message.mentions`), each counted up to
        `cap`; every channel in the answer. One statement however many channels, where the
        backend can (Postgres): a channel list must not cost a round trip per channel."""

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
        with `thread`, only the messages that answer message `thread` (its replies), deleted
        ones included. Messages are in their latest state, with their `reply_to` and
        `reply_count` (a reply's `quote` is left to the reader: storage/replies.py).

        Gap-free while inserts run: a page shows a message only once every older message of
        the channel is stored too, so paging on from a page's last id misses nothing."""

    async def sent_by(
        self, channel_id: str, sender_id: str, *, after: int, limit: int
    ) -> list[Message]:
        """Up to `limit` of the messages `sender_id` sent in the channel (not changes), the
        oldest with ids above `after`, ascending, in their latest state (a deleted one without
        its text): a page of a user's export. Reads the channel a chunk at a time, so memory
        stays bounded however long the channel."""

    async def pins(self, channel_id: str) -> list[Message]:
        """The channel's pinned messages (`pinned_by` set), the most recently pinned first: at
        most MAX_PINS_PER_CHANNEL, the cap the gateway and the pipeline keep."""

    async def close(self) -> None:
        """Release connections."""
