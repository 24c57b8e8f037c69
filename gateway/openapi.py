"""The HTTP API as an OpenAPI 3.1 document, made from the route registry (`ENDPOINTS` in
`gateway/http_api.py`, records of `Endpoint`) and the body models in `schemas/http.py`, and
served at `GET /v1/openapi.json`. `tests/test_openapi.py` checks that it lists exactly the
served routes and runs schemathesis against a gateway with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from schemas.http import ALL_ANSWERS, ALL_BODIES
from schemas.ids import ID_PATTERN

# An id in a path or a query.
ID = {"type": "string", "pattern": ID_PATTERN}


@dataclass(frozen=True)
class Endpoint:
    """One route of the HTTP API, as the registry in `gateway/http_api.py` lists it: both the
    Starlette routes and this document are made from these records."""

    method: str  # lower case, as OpenAPI writes it
    path: str
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    body: type[BaseModel] | None = None  # the JSON body it takes
    auth: bool | Literal["admin"] = True  # needs a bearer token: a device's, or the admin's
    query: dict[str, Any] = field(default_factory=dict)  # query parameters' JSON schemas
    json_only: bool = False  # refuses a body of any other type than JSON (415), before reading
    answer: type[BaseModel] | None = None  # the 200 answer, where the document describes it
    # Path parameters that are not ids: their JSON schemas (every other one is an id).
    path_schemas: dict[str, Any] = field(default_factory=dict)


_UNSUPPORTED = {
    "description": "unsupported_media_type: the body is not sent as Content-Type: "
    "application/json (a charset parameter may say utf-8)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

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


def document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of the routes `endpoints` (`gateway/http_api.py`: the registry)."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        method, path, body, answer = endpoint.method, endpoint.path, endpoint.body, endpoint.answer
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": endpoint.path_schemas.get(name, ID),
            }
            for name in _path_names(path)
        ] + [
            {"name": n, "in": "query", "required": False, "schema": s}
            for n, s in endpoint.query.items()
        ]
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": {
                "default": {
                    "description": "the answer (docs/protocol.md); errors in the spec's shape",
                    "content": {"application/json": {"schema": {}}},
                }
            },
        }
        if answer is not None:
            operation["responses"]["200"] = {
                "description": answer.__doc__ or "",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{answer.__name__}"}
                    }
                },
            }
        if endpoint.json_only:
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
        if endpoint.auth == "admin":
            operation["security"] = [{"admin": []}]
        elif endpoint.auth:
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
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                # The operator's: `PARLEY_ADMIN_TOKEN`; unset, the admin routes answer 404.
                "admin": {"type": "http", "scheme": "bearer"},
            },
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
