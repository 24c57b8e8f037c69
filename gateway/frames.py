"""Client frames in: one JSON object per text frame, checked and parsed (SPEC §3, §4).

A frame that fails here is answered with an `error` frame; the socket stays open.
"""

from __future__ import annotations

import re

import orjson
from pydantic import TypeAdapter, ValidationError

from gateway import metrics
from schemas.frames import (
    CLIENT_FRAME_TYPES,
    AnyClientFrame,
    ClientFrame,
    Hello,
)
from schemas.limits import MAX_FRAME_BYTES

client_frame: TypeAdapter[AnyClientFrame] = TypeAdapter(ClientFrame)
# Each frame type's count, bound once: `labels()` on every frame costs a lookup under a lock.
_FRAMES_IN = {kind: metrics.FRAMES_IN.labels(kind) for kind in CLIENT_FRAME_TYPES}


class FrameError(Exception):
    """A frame refused with an `error` frame of `code` (`ref` echoes its `client_msg_id`)."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.ref = code, message, ref


# A client_msg_id as clients write it: an early, unescaped string member of the frame.
_CLIENT_MSG_ID = re.compile(r'"client_msg_id"\s*:\s*"([^"\\\x00-\x1f]{1,64})"')


def too_large(head: str) -> FrameError:
    """The answer to a frame over MAX_FRAME_BYTES, of which only `head` was kept: `too_large`,
    with `ref` when the head shows the frame's `client_msg_id`."""
    found = _CLIENT_MSG_ID.search(head)
    return FrameError(
        "too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes", found and found.group(1)
    )


def parse_hello(raw: str | bytes) -> Hello:
    """The first frame, which must be a `hello`; raises FrameError saying why it is not."""
    try:
        hello = client_frame.validate_json(raw)
    except ValidationError:
        raise FrameError("unauthorized", "the first frame must be a valid hello") from None
    if not isinstance(hello, Hello):
        raise FrameError("unauthorized", "the first frame must be hello")
    return hello


def parse_frame(raw: str) -> tuple[AnyClientFrame, str | None]:
    """A client frame after `hello`, and the `client_msg_id` it carries if any (for `ref`).

    Raises FrameError saying what is wrong with the frame.
    """
    # A str holds at most 4 UTF-8 bytes per character: encode only when it might be too large.
    if len(raw) * 4 > MAX_FRAME_BYTES and len(raw.encode()) > MAX_FRAME_BYTES:
        raise FrameError("too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FrameError("invalid", "malformed JSON") from None
    if not isinstance(data, dict):
        raise FrameError("invalid", "a frame is a JSON object")
    kind = data.get("type")
    cmid = data.get("client_msg_id")
    ref = cmid if isinstance(cmid, str) and cmid else None
    if kind not in CLIENT_FRAME_TYPES:
        raise FrameError("invalid", f"unknown frame type {kind!r}", ref)
    _FRAMES_IN[kind].inc()
    try:
        return client_frame.validate_python(data), ref
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise FrameError("invalid", f"{where}: {first['msg']}", ref) from None
