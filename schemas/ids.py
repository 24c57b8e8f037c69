"""The wire rules for ids and names, shared by every entry point (frames, HTTP, events).

Every id is a positive 63-bit integer written in decimal, ASCII digits only, without leading
zeros. Names and client-chosen keys carry no control characters: nothing the pipeline or a
store could refuse later may be accepted at the edge (SPEC §4, "accepted means stored").
"""

from __future__ import annotations

import re
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
