"""Ids, and the wire rules for ids and names, shared by every entry point (frames, HTTP, events).

Every id is a positive 63-bit integer written in decimal, ASCII digits only, without leading
zeros. The high 41 bits are milliseconds since `EPOCH_MS` (2025-01-01T00:00:00Z), so ids sort
by time (Snowflake-style); the low 22 bits tell apart ids made in the same millisecond.
Message ids are not drawn at random: the message sequencer derives them deterministically from
the message stream (`processors/sequencer.py`). Other entities (users, devices, channels) use
`new_id()`, whose low bits are random. Names and client-chosen keys carry no control characters: nothing the pipeline or a
store could refuse later may be accepted at the edge (SPEC §4, "accepted means stored").
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ID = (1 << 63) - 1
ID_PATTERN = r"^[1-9][0-9]{0,18}$"
_ID = re.compile(r"[1-9][0-9]{0,18}")
# C0 and C1 control characters, and DEL. (NUL is the one Postgres refuses outright.)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"


def parse_id(raw: object) -> int | None:
    """An id from the wire (a decimal string of ASCII digits), or None when it is not one."""
    if not isinstance(raw, str) or not _ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _fits_63_bits(value: str) -> str:
    if int(value) > MAX_ID:
        raise ValueError("ids are at most 2^63-1")
    return value


IdString = Annotated[str, Field(pattern=ID_PATTERN), AfterValidator(_fits_63_bits)]

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
    second, ms = divmod(unix_ms, 1000)
    return f"{_iso_second(second)}.{ms:03d}Z"


@functools.lru_cache(maxsize=256)
def _iso_second(unix_s: int) -> str:
    """The second's part of `iso_ms`: made once for all the messages of that second."""
    return datetime.fromtimestamp(unix_s, tz=UTC).replace(tzinfo=None).isoformat()
