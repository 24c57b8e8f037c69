"""Fan-out: one inbox record per inbox partition a message's recipients live in.

A 100-member group costs at most `inbox_partitions` records, not 100; each record lists the
recipients of its partition, and a gateway delivers it to those of them connected to it.
"""

from __future__ import annotations

from collections import defaultdict

from schemas.events import InboxMessageV1
from schemas.message import Message
from topics.definitions import inbox_partition


def inbox_records(
    message: Message, recipients: list[str], partitions: int
) -> list[tuple[int, bytes]]:
    """(partition, encoded `inbox.message` event) for each partition holding a recipient."""
    by_partition: dict[int, list[str]] = defaultdict(list)
    for user_id in recipients:
        by_partition[inbox_partition(user_id, partitions)].append(user_id)
    return [
        (partition, InboxMessageV1(recipients=users, message=message).encode())
        for partition, users in sorted(by_partition.items())
    ]
