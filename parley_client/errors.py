"""The two ways a call of the protocol fails: an HTTP call answered with an error, and a
WebSocket session refused or dropped."""

from __future__ import annotations

from typing import Any

import httpx
import orjson


class ApiError(Exception):
    """An HTTP call answered with a status that is not a success.

    `code` is the error kind of Parley's envelope (`{"error": {"code", "message"}}`), such as
    `not_member` or `rate_limited`; it is None when the body was not that envelope (a proxy's
    error page, say). `retry_after_s` is the `Retry-After` header of a 429, if any."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        code: str | None,
        message: str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{method} {path}: {status} {code or '(no error code)'}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        request = response.request
        code, message = _envelope(response.content)
        retry_after = response.headers.get("retry-after")
        return cls(
            request.method,
            request.url.path,
            response.status_code,
            code,
            message if code is not None else response.text[:300],
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )


def _envelope(body: bytes) -> tuple[str | None, str]:
    """(code, message) of an error envelope; (None, "") for any other body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, ""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return None, ""
    return code, message


class SessionError(Exception):
    """A WebSocket session was refused, or dropped, or did not get through its sync in time.

    `kind` names what happened in a form fit for counting: `timeout`, `closed_<code>` (the
    connection closed; 1006 when no close frame came), `error_<code>` (an error frame, e.g.
    `error_unauthorized`), `protocol` (frames out of the protocol's order),
    `handshake_<exception>` (the HTTP upgrade was refused) or `os_<errno>` (the connection
    could not be made). `close_code` and `close_reason` are set when the socket closed."""

    def __init__(
        self,
        kind: str,
        detail: str,
        close_code: int | None = None,
        close_reason: str | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.close_code = close_code
        self.close_reason = close_reason
