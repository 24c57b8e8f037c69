"""The OpenAPI document lists exactly the gateway's routes, and schemathesis, generating
requests from it (valid and not), never gets a server error (SPEC §2: bad input gets a clear
error, never a 500)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from gateway.http_api import document, routes
from tests.conftest import PASSWORD
from tests.stack import Process


def test_the_document_lists_exactly_the_routes() -> None:
    served = {(m.lower(), r.path) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    listed = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert listed == served


def test_the_document_says_which_calls_take_json_only() -> None:
    paths = document()["paths"]
    refusing = {
        (m, p) for p, ops in paths.items() for m, op in ops.items() if "415" in op["responses"]
    }
    assert refusing == {("post", "/v1/users"), ("post", "/v1/sessions")}


@pytest.fixture
def token(gateway: Process) -> Iterator[str]:
    """A fresh device's token (some generated calls revoke it: each test gets its own)."""
    with httpx.Client(base_url=gateway.url, timeout=60) as http:
        username = f"st{uuid.uuid4().hex[:12]}"
        assert http.post("/v1/users", json={"username": username, "password": PASSWORD}).is_success
        login = http.post("/v1/sessions", json={"username": username, "password": PASSWORD})
        yield str(login.json()["token"])


def test_no_generated_request_gets_a_server_error(gateway: Process, token: str) -> None:
    api = schemathesis.openapi.from_url(f"{gateway.url}/v1/openapi.json")
    headers = {"authorization": f"Bearer {token}"}
    tried = set()
    for found in api.get_all_operations():
        operation = found.ok()

        # Valid requests and invalid ones (wrong types, missing fields, bad ids, ...).
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(base_url=gateway.url, headers=headers)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)

        no_server_error()
        tried.add((operation.method.lower(), operation.path))
    # Every operation but the document itself, which schemathesis leaves out.
    listed = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert tried == listed - {("get", "/v1/openapi.json")}
