"""The HTTP API as an OpenAPI 3.1 document, made from the body models in `schemas/http.py` and
served at `GET /v1/openapi.json`. `tests/test_openapi.py` checks that it lists exactly the
routes of `gateway/http_api.py` and runs schemathesis against a gateway with it."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from schemas.http import (
    ALL_ANSWERS,
    ALL_BODIES,
    AccountSettings,
    GroupSettings,
    MemberRole,
    NewChannel,
    NewMember,
    NewSession,
    NewUser,
    ProfileChange,
    SearchResults,
)
from schemas.http import PushEndpointBody as PushBody
from schemas.ids import ID_PATTERN
from schemas.limits import MAX_SEARCH_QUERY_CHARS, SEARCH_LIMIT_MAX

_ID = {"type": "string", "pattern": ID_PATTERN}
_IDS_PATTERN = "^[1-9][0-9]{0,18}(,[1-9][0-9]{0,18}){0,99}$"

# (method, path, summary, body model, needs a token, query parameters)
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, bool, dict[str, Any]]] = [
    ("post", "/v1/users", "Sign up", NewUser, False, {}),
    (
        "get",
        "/v1/users",
        "Find a user by username, or the profiles of up to 100 user ids",
        None,
        True,
        {
            "username": {"type": "string", "pattern": "^[a-z0-9_.-]{3,32}$"},
            "ids": {"type": "string", "pattern": _IDS_PATTERN},
        },
    ),
    ("get", "/v1/users/me", "The caller's profile", None, True, {}),
    ("patch", "/v1/users/me", "Set the caller's display name", ProfileChange, True, {}),
    ("get", "/v1/users/{user_id}", "A user's profile, if visible to the caller", None, True, {}),
    ("post", "/v1/sessions", "Log in: a new device with its token", NewSession, False, {}),
    ("delete", "/v1/sessions/current", "Log out this device", None, True, {}),
    ("post", "/v1/sessions/current/renew", "A new token for this device", None, True, {}),
    ("get", "/v1/devices", "The account's devices (expired ones too)", None, True, {}),
    ("delete", "/v1/devices", "Revoke every device of the account", None, True, {}),
    ("delete", "/v1/devices/{device_id}", "Revoke one device", None, True, {}),
    ("get", "/v1/discovery", "Gateways, best first", None, True, {}),
    ("post", "/v1/channels", "Open a direct channel or create a group", NewChannel, True, {}),
    ("get", "/v1/channels", "The caller's channels", None, True, {}),
    ("patch", "/v1/channels/{channel_id}", "Change a group's settings", GroupSettings, True, {}),
    ("post", "/v1/channels/{channel_id}/members", "Add a group member", NewMember, True, {}),
    (
        "delete",
        "/v1/channels/{channel_id}/members/{user_id}",
        "Remove, leave or hide",
        None,
        True,
        {},
    ),
    (
        "put",
        "/v1/channels/{channel_id}/members/{user_id}",
        "Set a member's role",
        MemberRole,
        True,
        {},
    ),
    (
        "get",
        "/v1/channels/{channel_id}/messages",
        "A page of history",
        None,
        True,
        {
            "before": _ID,
            "after": _ID,
            "around": _ID,
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    ),
    (
        "get",
        "/v1/search",
        "Search the caller's messages, newest first",
        None,
        True,
        {
            "q": {"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_QUERY_CHARS},
            "channel_id": _ID,
            "before": _ID,
            "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX},
        },
    ),
    (
        "get",
        "/v1/channels/{channel_id}/receipts",
        "How far members have read",
        None,
        True,
        {},
    ),
    ("get", "/v1/settings", "The account's settings", None, True, {}),
    ("put", "/v1/settings", "Change the account's settings", AccountSettings, True, {}),
    ("get", "/v1/friends", "Friends and requests", None, True, {}),
    ("put", "/v1/friends/{user_id}", "Ask or accept", None, True, {}),
    ("delete", "/v1/friends/{user_id}", "Unfriend, cancel or decline", None, True, {}),
    ("get", "/v1/blocks", "Whom the caller blocks", None, True, {}),
    ("put", "/v1/blocks/{user_id}", "Block a user", None, True, {}),
    ("delete", "/v1/blocks/{user_id}", "Lift a block", None, True, {}),
    ("get", "/v1/presence", "Friends' presence now", None, True, {"user_ids": {"type": "string"}}),
    ("get", "/v1/push/endpoints", "The account's push endpoints", None, True, {}),
    (
        "put",
        "/v1/push/endpoints/current",
        "Register this device's push endpoint",
        PushBody,
        True,
        {},
    ),
    ("delete", "/v1/push/endpoints/current", "Stop pushing to this device", None, True, {}),
    ("get", "/v1/openapi.json", "This document", None, False, {}),
    ("get", "/v1/asyncapi.json", "The WebSocket frames and topics (AsyncAPI 3.0)", None, False, {}),
    ("get", "/healthz", "Liveness", None, False, {}),
    ("get", "/metrics", "Prometheus metrics", None, False, {}),
]

# Operations that refuse a body of any other type than JSON (415), before anything is counted.
JSON_ONLY = {("post", "/v1/users"), ("post", "/v1/sessions")}

_UNSUPPORTED = {
    "description": "unsupported_media_type: the body is not sent as Content-Type: "
    "application/json (a charset parameter may say utf-8)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

# The success answers the document describes, by operation.
ANSWERS: dict[tuple[str, str], type[BaseModel]] = {("get", "/v1/search"): SearchResults}

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (made once)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, auth, query in OPERATIONS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _ID}
            for name in _path_names(path)
        ] + [{"name": n, "in": "query", "required": False, "schema": s} for n, s in query.items()]
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "default": {
                    "description": "the answer (docs/protocol.md); errors in the spec's shape",
                    "content": {"application/json": {"schema": {}}},
                }
            },
        }
        answer = ANSWERS.get((method, path))
        if answer is not None:
            operation["responses"]["200"] = {
                "description": answer.__doc__ or "",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{answer.__name__}"}
                    }
                },
            }
        if (method, path) in JSON_ONLY:
            operation["responses"]["415"] = _UNSUPPORTED
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                    }
                },
            }
        if auth:
            operation["security"] = [{"token": []}]
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley", "version": "1", "description": "docs/protocol.md"},
        "paths": paths,
        "components": {
            "schemas": {
                **{name: m.model_json_schema() for name, m in ALL_BODIES.items()},
                **_answer_schemas(),
                "Error": _ERROR,
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


def _answer_schemas() -> dict[str, Any]:
    """The answers' schemas, with the models they nest under `components/schemas` too."""
    out: dict[str, Any] = {}
    for name, model in ALL_ANSWERS.items():
        schema = model.model_json_schema(
            mode="serialization", ref_template="#/components/schemas/{model}"
        )
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    return out


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
