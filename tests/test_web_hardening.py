"""What the gateway takes and what it answers with, hardened: every string the HTTP API stores
refuses control characters (422 `invalid`, never a 500), every answer carries the headers
that keep a browser from misreading or caching it, pages carry the app's Content-Security-
Policy, and /metrics on the public port answers only this machine unless configured to."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, Api, extra_gateway
from tests.stack import Stack

CONTROLS = ["\x00", "\x1b"]


def _field(path: str, method: str, body: dict[str, Any], expected: int = 422) -> Any:
    where = next(k for k, v in body.items() if "{c}" in k or "{c}" in str(v))
    return pytest.param(method, path, body, expected, id=f"{method} {path} {where}")


# (method, path, body with the control character as "{c}", the answer it gets). {channel},
# {user} and {c} are filled in by the test. Passwords are accepted as typed: only their hash
# is kept. A log-in's username is never stored: one with a control character is no account's.
FIELDS = [
    _field("/v1/users", "POST", {"username": "ok{c}name", "password": PASSWORD}),
    _field("/v1/users", "POST", {"username": "{u}", "password": PASSWORD + "{c}"}, 201),
    _field("/v1/users", "POST", {"username": "{u}", "password": PASSWORD, "display_name": "A{c}"}),
    _field(
        "/v1/sessions", "POST", {"username": "{me}", "password": PASSWORD, "device_name": "p{c}"}
    ),
    _field("/v1/sessions", "POST", {"username": "{me}{c}", "password": PASSWORD}, 401),
    _field("/v1/channels", "POST", {"type": "group", "name": "g{c}", "member_ids": ["{user}"]}),
    _field("/v1/channels", "POST", {"type": "group", "name": "g", "member_ids": ["{c}"]}),
    _field("/v1/channels", "POST", {"type": "direct", "user_id": "{user}{c}"}),
    _field("/v1/channels", "POST", {"type": "{c}"}),
    _field("/v1/channels/{channel}/members", "POST", {"user_id": "{user}{c}"}),
    _field("/v1/channels/{channel}/members/{user}", "PUT", {"role": "admin{c}"}),
    _field("/v1/push/endpoints/current", "PUT", {"platform": "fcm", "token": "tok{c}en"}),
    _field("/v1/push/endpoints/current", "PUT", {"platform": "fcm{c}", "token": "token"}),
    _field("/v1/settings", "PUT", {"read_receipts": "{c}"}),
    _field("/v1/settings", "PUT", {"read_receipts": True, "x{c}": True}),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize("control", CONTROLS, ids=["nul", "esc"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), FIELDS)
async def test_every_stored_string_refuses_control_characters(
    api: Api, method: str, path: str, body: dict[str, Any], expected: int, control: str
) -> None:
    me, other = await api.new_device("ctl"), await api.new_device("ctl")
    channel = await api.group(me, [other.user_id])
    names = {
        "c": control,
        "me": me.username,
        "user": other.user_id,
        "channel": channel,
        "u": f"ctl{uuid.uuid4().hex[:12]}",
    }
    response = await api.request(method, _fill(path, names), auth=me, json=_fill(body, names))
    assert response.status_code == expected, response.text
    if expected == 422:
        assert response.json()["error"]["code"] == "invalid", response.text


@pytest.mark.parametrize("control", ["%00", "%1B"], ids=["nul", "esc"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/friends/{c}"),
        ("DELETE", "/v1/friends/1{c}"),
        ("PUT", "/v1/blocks/{c}"),
        ("DELETE", "/v1/blocks/{c}"),
        ("DELETE", "/v1/devices/{c}"),
        ("GET", "/v1/channels/{c}/messages"),
        ("GET", "/v1/channels/{c}/receipts"),
        ("GET", "/v1/users?username=a{c}bc"),
        ("GET", "/v1/presence?user_ids={c}"),
        ("GET", "/v1/search?q=a{c}b"),
        ("GET", "/v1/search?q=ab&before={c}"),
    ],
)
async def test_control_characters_in_paths_and_queries_are_never_a_server_error(
    api: Api, method: str, path: str, control: str
) -> None:
    me = await api.new_device("ctl")
    response = await api.request(method, path.replace("{c}", control), auth=me)
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 404, 422), response.text


async def test_a_push_token_with_a_control_character_is_refused_and_nothing_is_stored(
    api: Api,
) -> None:
    me = await api.new_device("push")
    response = await api.request(
        "PUT", "/v1/push/endpoints/current", auth=me, json={"platform": "fcm", "token": "a\x00b"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "token must not contain control characters",
    }
    listed = await api.request("GET", "/v1/push/endpoints", auth=me)
    assert listed.json() == {"endpoints": []}
    # A printable token is still taken.
    ok = await api.request(
        "PUT", "/v1/push/endpoints/current", auth=me, json={"platform": "fcm", "token": "a b"}
    )
    assert ok.status_code == 200 and ok.json()["token"] == "a b"


# --- headers -------------------------------------------------------------------------------


def _csp(host: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _api_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["cache-control"] == "no-store", response.url
    assert response.headers["content-type"] == "application/json", response.url


async def test_api_answers_errors_included_are_nosniff_and_never_cached(api: Api) -> None:
    me = await api.new_device("hdr")
    answers = [
        await api.request("GET", "/v1/devices", auth=me),  # 200
        await api.request("GET", "/v1/channels"),  # 401
        await api.request("POST", "/v1/users", content=b"{not json"),  # 422
        await api.request("GET", "/v1/no-such-route"),  # 404
        await api.request("PATCH", "/v1/devices", auth=me),  # 405
        await api.request("GET", "/v1/openapi.json"),
        await api.request(
            "PUT", "/v1/push/endpoints/current", auth=me, json={"platform": "x", "token": "\x00"}
        ),
    ]
    assert [a.status_code for a in answers] == [200, 401, 422, 404, 405, 200, 422]
    for answer in answers:
        _api_headers(answer)


async def test_pages_carry_the_csp_of_their_own_host_and_static_files_are_nosniff(
    api: Api,
) -> None:
    host = api.http.base_url.netloc.decode()
    page = await api.request("GET", "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == _csp(host)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["referrer-policy"] == "no-referrer"
    # The policy follows the Host the page was asked for.
    other = await api.http.get("/", headers={"host": "chat.example.org:8443"})
    assert other.headers["content-security-policy"] == _csp("chat.example.org:8443")
    # A forged Host never reaches the policy's text: the page may talk to its origin only.
    forged = await api.http.get("/", headers={"host": "x; script-src *"})
    csp = forged.headers["content-security-policy"]
    assert "connect-src 'self';" in csp and "*" not in csp
    script = await api.request("GET", "/app/main.js")
    assert script.status_code == 200
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in script.headers


async def test_the_client_library_is_served_beside_the_app(api: Api) -> None:
    """The web app imports the JavaScript client (clients/js/src) from /client/: its modules
    come from the app's origin, as scripts and nosniff; nothing else of the repository does."""
    module = await api.request("GET", "/client/index.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.headers["x-content-type-options"] == "nosniff"
    assert "export { Client }" in module.text
    assert (await api.request("GET", "/app/chat-app.js")).text.count('from "/client/index.js"') == 1
    for path in [
        "/client/",
        "/client/nothing.js",
        "/client/../package.json",
        "/client/%2e%2e/package.json",
        "/client/%2e%2e/test/stack.test.js",
        "/client/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    ]:
        answer = await api.http.get(path)
        assert answer.status_code == 404, path


def _public_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # nothing is sent: it only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("public", [False, True], ids=["default", "metrics_public"])
async def test_metrics_on_the_public_port_answer_loopback_only_unless_configured(
    stack: Stack, public: bool
) -> None:
    address = _public_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    env = {"PARLEY_HTTP_HOST": "0.0.0.0"}
    if public:
        env["PARLEY_METRICS_PUBLIC"] = "true"
    async with extra_gateway(stack, **env) as gateway, httpx.AsyncClient(timeout=10) as http:
        local = await http.get(f"http://127.0.0.1:{gateway.port}/metrics")
        assert local.status_code == 200 and "parley_gateway" in local.text
        remote = await http.get(f"http://{address}:{gateway.port}/metrics")
        if public:
            assert remote.status_code == 200 and "parley_gateway" in remote.text
        else:
            assert remote.status_code == 404, remote.text
            assert remote.json()["error"]["code"] == "not_found"
        # The rest of the port answers everyone.
        assert (await http.get(f"http://{address}:{gateway.port}/healthz")).status_code == 200
