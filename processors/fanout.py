"""Fan-out: one inbox record per inbox partition a message's recipients live in.

A 100-member group costs at most `inbox_partitions` records, not 100; each record lists the
recipients of its partition, and a gateway delivers it to those of them connected to it.
The message is encoded once for all its records, and a user's partition is hashed once per
process, not once per message (murmur2 is pure Python: hashing a 100-member group on every
message cost more than everything else the processor does for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from schemas.events import InboxMessageV1
from schemas.message import Message
from topics.definitions import inbox_partition

_partition_of = lru_cache(maxsize=1 << 18)(inbox_partition)


def by_inbox_partition(recipients: Sequence[str], partitions: int) -> list[tuple[int, list[str]]]:
    """The recipients grouped by their inbox partition, in partition order."""
    grouped: dict[int, list[str]] = {}
    for user_id in recipients:
        grouped.setdefault(_partition_of(user_id, partitions), []).append(user_id)
    return sorted(grouped.items())


def inbox_records(
    message: Message, recipients: Sequence[str], partitions: int
) -> list[tuple[int, bytes]]:
    """(partition, encoded `inbox.message` event) for each partition holding a recipient."""
    body = message.encode()
    return [
        (partition, InboxMessageV1.encode_parts(users, body))
        for partition, users in by_inbox_partition(recipients, partitions)
    ]
