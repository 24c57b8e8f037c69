"""Time buckets of the message store: a channel's messages are partitioned into slices of
`BUCKET_MS` so that no partition grows without bound (a Scylla partition should stay small)."""

from schemas.ids import SEQUENCE_BITS

BUCKET_MS = 10 * 24 * 3600 * 1000  # ten days


def bucket_of(message_id: int) -> int:
    return (message_id >> SEQUENCE_BITS) // BUCKET_MS
