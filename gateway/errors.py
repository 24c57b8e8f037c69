"""Errors in the spec's shape: `{"error": {"code", "message"}}` over HTTP, `error` frames on sockets."""

from __future__ import annotations

from starlette.responses import Response

from gateway.encoding import json_response


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return json_response({"error": {"code": self.code, "message": self.message}}, self.status)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid", message)


def unauthorized(message: str = "missing, invalid or revoked token") -> ApiError:
    return ApiError(401, "unauthorized", message)


def not_member() -> ApiError:
    return ApiError(403, "not_member", "you are not a member of this channel")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")
