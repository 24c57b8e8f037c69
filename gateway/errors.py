"""Errors in the spec's shape: `{"error": {"code", "message"}}` over HTTP, `error` frames on sockets."""

from __future__ import annotations

import math
from typing import TypeVar

from pydantic import ValidationError
from starlette.responses import Response

from gateway.encoding import json_response
from schemas.http import Body
from schemas.ids import has_control_characters, parse_id

B = TypeVar("B", bound=Body)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    def response(self) -> Response:
        response = json_response(
            {"error": {"code": self.code, "message": self.message}}, self.status
        )
        if self.retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return response


def rate_limited(message: str, retry_after_s: float) -> ApiError:
    return ApiError(429, "rate_limited", message, retry_after_s)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid", message)


def unauthorized(message: str = "missing, invalid or revoked token") -> ApiError:
    return ApiError(401, "unauthorized", message)


def suspended() -> ApiError:
    return ApiError(403, "suspended", "this account is suspended")


def not_member() -> ApiError:
    return ApiError(403, "not_member", "you are not a member of this channel")


def blocked() -> ApiError:
    return ApiError(403, "blocked", "a block between you and this user forbids it")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def require_id(raw: object, what: str) -> str:
    """`raw` if it is an id on the wire (ASCII decimal digits, 63 bits); else 422 `invalid`."""
    if parse_id(raw) is None:
        raise invalid(f"{what} must be an id: a decimal number")
    return str(raw)


def require_body(model: type[B], body: object) -> B:
    """`body` validated by its model (`schemas/http.py`; strictly: no coercion); else 422
    `invalid`, in the model's words."""
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as refused:
        raise invalid(model.refusal(refused.errors())) from None


def require_name(raw: object, what: str, max_chars: int) -> str:
    """A name of 1..`max_chars` characters without control characters; else 422 `invalid`."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= max_chars or has_control_characters(raw):
        raise invalid(f"{what} must be 1-{max_chars} characters, without control characters")
    return raw
