"""Writes the JSON Schema documents in `schemas/json/` from the models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel

from schemas.events import ALL_EVENTS
from schemas.frames import ALL_FRAMES
from schemas.push import PushNotificationV1

JSON_DIR = Path(__file__).parent / "json"


def documents() -> dict[str, bytes]:
    """Each schema's file name and its JSON text."""
    out: dict[str, bytes] = {}
    models: dict[str, type[BaseModel]] = {
        **ALL_EVENTS,
        **ALL_FRAMES,
        "push.notification.v1": PushNotificationV1,
    }
    for name, model in models.items():
        # Client frames are what Parley reads; everything else is what it writes.
        mode: Literal["validation", "serialization"] = (
            "validation" if name.startswith("client.") else "serialization"
        )
        schema = model.model_json_schema(mode=mode)
        schema["$id"] = f"https://parley.dev/schemas/{name}.json"
        out[f"{name}.json"] = orjson.dumps(
            schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
    return out


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        path = directory / name
        path.write_bytes(text + b"\n")
        written.append(path)
    return written
