"""Log-ins are throttled per client address, per (account, address), and per account with a
ceiling that slows instead of locking: a stranger hammering an account from their address
cannot keep its owner, on another address, out. Sign-up and log-in take JSON only, so a
cross-site form cannot spend a victim's attempts (SPEC §2).

Clients come from different loopback addresses (127.0.0.2, 127.0.0.3, ...): the gateway
throttles by the address the socket sees."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from gateway.ratelimit import LoginThrottle, address_key
from tests.conftest import PASSWORD, Api, extra_gateway
from tests.stack import Process, Stack

DEFAULTS = {
    "PARLEY_THROTTLE_WINDOW_S": "600",
    "PARLEY_LOGINS_PER_ADDRESS": "30",
    "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "10",
    "PARLEY_LOGINS_PER_ACCOUNT": "50",
}
LIFTED = "1000000"


@asynccontextmanager
async def client_at(gateway: Process, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from `address`."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=gateway.url, transport=transport, timeout=60) as http:
        yield http


async def log_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post("/v1/sessions", json={"username": username, "password": password})


def refused(answer: httpx.Response, what: str) -> int:
    """The answer is 429 `rate_limited` naming `what`; returns its Retry-After."""
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["code"] == "rate_limited" and what in error["message"], error
    retry_after = int(answer.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def test_an_attacker_hammering_an_account_does_not_lock_its_owner_out(
    api: Api, stack: Stack
) -> None:
    async with extra_gateway(stack, **DEFAULTS) as gateway:
        owner = await api.new_user("lt_o")
        async with client_at(gateway, "127.0.0.2") as attacker:
            answers = [await log_in(attacker, owner, f"guess-{i}") for i in range(12)]
            assert [a.status_code for a in answers] == [401] * 10 + [429] * 2
            refused(answers[-1], "log-ins to this account")
            # Even the right password, from the attacker's address.
            refused(await log_in(attacker, owner, PASSWORD), "log-ins to this account")
        async with client_at(gateway, "127.0.0.3") as own:
            answer = await log_in(own, owner, PASSWORD)
            assert answer.status_code == 201, answer.text


async def test_one_address_is_refused_past_its_log_ins_whatever_the_accounts(
    api: Api, stack: Stack
) -> None:
    env = {**DEFAULTS, "PARLEY_LOGINS_PER_ADDRESS": "5"}
    async with extra_gateway(stack, **env) as gateway:
        owner = await api.new_user("lt_a")
        async with client_at(gateway, "127.0.0.2") as attacker:
            names = [f"nobody{uuid.uuid4().hex[:12]}" for _ in range(7)]
            answers = [await log_in(attacker, name, "guess-guess") for name in names]
            assert [a.status_code for a in answers] == [401] * 5 + [429] * 2
            refused(answers[-1], "log-ins from this address")
            refused(await log_in(attacker, owner, PASSWORD), "log-ins from this address")
        async with client_at(gateway, "127.0.0.3") as other:
            assert (await log_in(other, owner, PASSWORD)).status_code == 201


async def test_a_successful_log_in_gives_its_address_its_attempts_back(
    api: Api, stack: Stack
) -> None:
    env = {
        "PARLEY_LOGINS_PER_ADDRESS": LIFTED,
        "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "3",
        "PARLEY_LOGINS_PER_ACCOUNT": LIFTED,
    }
    async with extra_gateway(stack, **env) as gateway:
        owner = await api.new_user("lt_r")
        async with client_at(gateway, "127.0.0.3") as own:
            for _ in range(3):  # two typos and a success, three times over: never throttled
                assert (await log_in(own, owner, "typo-typo")).status_code == 401
                assert (await log_in(own, owner, "typo-typo")).status_code == 401
                assert (await log_in(own, owner, PASSWORD)).status_code == 201
            for _ in range(3):
                assert (await log_in(own, owner, "typo-typo")).status_code == 401
            refused(await log_in(own, owner, PASSWORD), "log-ins to this account")


async def test_log_ins_count_against_the_folded_capped_username(api: Api, stack: Stack) -> None:
    env = {
        "PARLEY_LOGINS_PER_ADDRESS": LIFTED,
        "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "3",
        "PARLEY_LOGINS_PER_ACCOUNT": LIFTED,
    }
    async with extra_gateway(stack, **env) as gateway, client_at(gateway, "127.0.0.2") as http:
        owner = await api.new_user("lt_k")
        fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in owner)
        # No account has these names (usernames are lower case ASCII), but they stand for
        # the owner's: folded (NFKC, casefold), they are the owner's name.
        for name in (owner.upper(), fullwidth, owner):
            assert (await log_in(http, name, "guess-guess")).status_code == 401
        refused(await log_in(http, owner, PASSWORD), "log-ins to this account")

        # Names longer than any username share a key by their start, whatever their length.
        start = "x" * 40
        for tail in ("a" * 10_000, "b", "c" * 50_000):
            assert (await log_in(http, start + tail, "guess-guess")).status_code == 401
        refused(await log_in(http, start + "d", "guess-guess"), "log-ins to this account")


async def test_past_the_account_ceiling_addresses_take_turns_and_the_owner_gets_in(
    api: Api, stack: Stack
) -> None:
    # 4 attempts on one account at once, then one every 5 s, across every address (slow
    # enough that a busy machine does not reach a turn before the test asks).
    env = {
        "PARLEY_THROTTLE_WINDOW_S": "20",
        "PARLEY_LOGINS_PER_ADDRESS": LIFTED,
        "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": LIFTED,
        "PARLEY_LOGINS_PER_ACCOUNT": "4",
    }
    interval_s = 5
    async with (
        extra_gateway(stack, **env) as gateway,
        client_at(gateway, "127.0.0.2") as attacker,
        client_at(gateway, "127.0.0.3") as own,
    ):
        owner = await api.new_user("lt_c")
        for i in range(4):
            assert (await log_in(attacker, owner, f"guess-{i}")).status_code == 401
        attacker_wait = refused(await log_in(attacker, owner, "guess-4"), "this account")
        attacker_told = time.monotonic()
        owner_wait = refused(await log_in(own, owner, PASSWORD), "this account")
        owner_told = time.monotonic()
        # The owner's turn comes after the one attacker's: a bounded wait.
        assert owner_wait <= 2 * interval_s + 1, owner_wait
        # Asking again before its turn neither helps the attacker nor pushes the owner back.
        for _ in range(5):
            again = refused(await log_in(attacker, owner, "guess-5"), "this account")
            assert again <= attacker_wait
        # Each comes back when told to, as a client must (Retry-After), not earlier.
        await asyncio.sleep(attacker_wait - (time.monotonic() - attacker_told))
        assert (await log_in(attacker, owner, "guess-6")).status_code == 401  # its turn
        refused(await log_in(attacker, owner, "guess-7"), "this account")  # the next is later
        await asyncio.sleep(owner_wait - (time.monotonic() - owner_told))
        answer = await log_in(own, owner, PASSWORD)
        assert answer.status_code == 201, answer.text


def forms(username: str) -> list[dict[str, Any]]:
    """Posts of the owner's name and password that are not JSON: what a page of another site
    can make a browser send without asking first (a form: urlencoded, multipart, or text/plain
    crafted to read as JSON), and JSON under no type or another charset than UTF-8."""
    fields = {"username": username, "password": PASSWORD}
    as_json = orjson.dumps(fields)
    return [
        {"data": fields},
        {"files": {k: (None, v) for k, v in fields.items()}},
        {"content": as_json, "headers": {"content-type": "text/plain"}},
        {"content": as_json},
        {"content": as_json, "headers": {"content-type": "application/json; charset=latin-1"}},
        {"content": as_json, "headers": {"content-type": "application/jsonx"}},
    ]


async def test_only_json_is_taken_by_sign_up_and_log_in_and_a_form_costs_no_attempt(
    api: Api, stack: Stack
) -> None:
    env = {
        "PARLEY_SIGNUPS_PER_ADDRESS": "1",
        "PARLEY_LOGINS_PER_ADDRESS": "2",
        "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "2",
        "PARLEY_LOGINS_PER_ACCOUNT": "2",
    }
    async with extra_gateway(stack, **env) as gateway, client_at(gateway, "127.0.0.2") as http:
        owner = await api.new_user("lt_f")
        for path in ("/v1/sessions", "/v1/users"):
            for form in forms(owner):
                for _ in range(3):
                    answer = await http.post(path, **form)
                    assert answer.status_code == 415, (path, form, answer.text)
                    error = answer.json()["error"]
                    assert error["code"] == "unsupported_media_type", error
                    assert "application/json" in error["message"]
        # None of them counted: the address's and the account's attempts are all there.
        typed = {"content-type": "Application/JSON; charset=UTF-8"}
        body = orjson.dumps({"username": owner, "password": PASSWORD})
        for _ in range(2):
            answer = await http.post("/v1/sessions", content=body, headers=typed)
            assert answer.status_code == 201, answer.text
        name = f"lt_n{uuid.uuid4().hex[:12]}"
        answer = await http.post("/v1/users", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 201, answer.text


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_one_as_itself() -> None:
    # Loopback gives no second IPv6 address to connect from: the key is checked alone.
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:127.0.0.2") == address_key("127.0.0.2") == "127.0.0.2"
    assert address_key("127.0.0.2") != address_key("127.0.0.3")


def test_the_log_in_throttle_holds_a_bounded_number_of_keys() -> None:
    throttle = LoginThrottle(per_pair=1, per_account=1000, window_s=600, max_keys=100)
    assert throttle.attempt("first", "127.0.0.2") == 0
    assert throttle.attempt("first", "127.0.0.2") > 0
    for i in range(100):  # a hundred newer keys push the first out: it starts afresh
        throttle.attempt(f"junk{i}", "127.0.0.2")
    assert throttle.attempt("first", "127.0.0.2") == 0
