"""Server frames checked against the AsyncAPI document (gateway/asyncapi.py): the payload
schema of the message the gateway sends with that `type`, with `jsonschema` (draft 7, the
dialect AsyncAPI schemas extend). A frame of a type the document does not list fails.

`FrameRecorder` keeps what every test session reads (through `Session.observer`, set by the
autouse fixture in tests/conftest.py), cheaply: the first `per_type` frames of each type, and
after that one frame per new shape (its keys and their value types)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema
import orjson
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOCUMENT_URI = "https://parley.dev/asyncapi.json"


def server_frame_validators(document: dict[str, Any]) -> dict[str, jsonschema.Draft7Validator]:
    """A validator per server frame `type`: the payloads of the messages the gateway sends on
    its WebSocket channel, as the document's `send` operations name them."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT7)
    )
    validators = {}
    for operation in document["operations"].values():
        if operation["action"] != "send" or operation["channel"]["$ref"] != "#/channels/socket":
            continue
        for reference in operation["messages"]:
            name = reference["$ref"].rsplit("/", 1)[1]
            schema_ref = document["components"]["messages"][name]["payload"]["$ref"]
            payload = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
            frame_type = payload["properties"]["type"]["const"]
            validators[frame_type] = jsonschema.Draft7Validator(
                {"$ref": DOCUMENT_URI + schema_ref}, registry=registry
            )
    return validators


def problems(
    frames: list[dict[str, Any]], validators: dict[str, jsonschema.Draft7Validator]
) -> list[str]:
    """What is wrong with each frame that does not match the document (empty: all match)."""
    found = []
    for frame in frames:
        validator = validators.get(frame.get("type"))  # type: ignore[arg-type]
        if validator is None:
            found.append(f"a frame of a type the document does not list: {_show(frame)}")
            continue
        for error in validator.iter_errors(frame):
            where = "/".join(str(p) for p in error.absolute_path) or "(the frame)"
            found.append(f"{where}: {error.message}: {_show(frame)}")
    return found


class FrameRecorder:
    """Keeps a sample of the frames read, bounded whatever a test reads."""

    def __init__(self, per_type: int = 50, most: int = 20_000) -> None:
        self.frames: list[dict[str, Any]] = []
        self._per_type = per_type
        self._most = most
        self._counts: Counter[object] = Counter()
        self._shapes: set[tuple[object, ...]] = set()

    def record(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        self._counts[kind] += 1
        if self._counts[kind] > self._per_type:
            shape = (kind, *((k, v.__class__) for k, v in frame.items()))
            if shape in self._shapes or len(self.frames) >= self._most:
                return
            self._shapes.add(shape)
        self.frames.append(frame)


def _show(frame: dict[str, Any]) -> str:
    text = orjson.dumps(frame).decode()
    return text if len(text) <= 300 else text[:300] + "…"
