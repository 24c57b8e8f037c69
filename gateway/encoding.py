"""JSON in and out with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def frame(body: dict[str, Any]) -> str:
    """A server frame as the text of a WebSocket message."""
    return orjson.dumps(body).decode()
