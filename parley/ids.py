"""Identifiers.

Every id is a positive 63-bit integer written in decimal on the wire. The high 41 bits are
milliseconds since `EPOCH_MS` (2025-01-01T00:00:00Z), so ids sort by time (Snowflake-style);
the low 22 bits tell apart ids made in the same millisecond.

Message ids are not drawn at random: the message sequencer derives them deterministically
from the message stream (see `processors/sequencer.py`). Other entities (users, devices,
channels) use `new_id()`, whose low bits are random.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
SEQUENCE_BITS = 22
SEQUENCE_MASK = (1 << SEQUENCE_BITS) - 1


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def id_floor(unix_ms: int) -> int:
    """The smallest id that can be made at `unix_ms`; every id made later is larger."""
    return max(unix_ms - EPOCH_MS, 0) << SEQUENCE_BITS


def id_unix_ms(value: int) -> int:
    """The wall-clock millisecond an id was made in."""
    return (value >> SEQUENCE_BITS) + EPOCH_MS


def new_id() -> str:
    """A fresh time-sortable id for an entity (user, device, channel)."""
    return str(id_floor(now_ms()) | secrets.randbits(SEQUENCE_BITS))


def iso_ms(unix_ms: int) -> str:
    """ISO-8601 UTC with millisecond precision, as `sent_at` is written on the wire."""
    return (
        datetime.fromtimestamp(unix_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
