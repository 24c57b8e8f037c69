"""Sign-ups and log-ins are throttled per client address and per account (429 with
Retry-After), and password hashing is bounded so a flood cannot take the gateway (SPEC §2).
tests/test_login_throttling.py has the log-in throttles from several addresses."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from tests.conftest import PASSWORD, Api, extra_gateway
from tests.stack import Stack

DEFAULT_THROTTLES = {
    "PARLEY_SIGNUPS_PER_ADDRESS": "20",
    "PARLEY_LOGINS_PER_ADDRESS": "30",
    "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "10",
    "PARLEY_LOGINS_PER_ACCOUNT": "50",
}


async def test_wrong_passwords_for_one_account_are_throttled_and_others_still_log_in(
    api: Api, stack: Stack
) -> None:
    async with extra_gateway(stack, **DEFAULT_THROTTLES) as gateway:
        victim, bystander = await api.new_user("th_v"), await api.new_user("th_b")
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
            answers = [
                await http.post(
                    "/v1/sessions", json={"username": victim, "password": "guess-%d" % i}
                )
                for i in range(12)
            ]
            assert [a.status_code for a in answers] == [401] * 10 + [429] * 2
            limited = answers[-1]
            assert limited.json()["error"]["code"] == "rate_limited"
            assert int(limited.headers["retry-after"]) >= 1
            # The right password is throttled too, from this address: attempts are counted,
            # not failures.
            right = await http.post("/v1/sessions", json={"username": victim, "password": PASSWORD})
            assert right.status_code == 429
            other = await http.post(
                "/v1/sessions", json={"username": bystander, "password": PASSWORD}
            )
            assert other.status_code == 201, other.text


async def test_sign_ups_from_one_address_are_throttled(api: Api, stack: Stack) -> None:
    async with extra_gateway(stack, **DEFAULT_THROTTLES) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
            codes = [
                (
                    await http.post(
                        "/v1/users",
                        json={"username": f"su{uuid.uuid4().hex[:12]}", "password": PASSWORD},
                    )
                ).status_code
                for _ in range(22)
            ]
        assert codes == [201] * 20 + [429] * 2


async def test_a_flood_of_log_ins_waits_in_a_bounded_queue_and_the_rest_are_refused(
    api: Api, stack: Stack
) -> None:
    # Real hashing cost, one hash at a time, two waiting at most.
    async with extra_gateway(
        stack,
        PARLEY_ARGON2_TIME_COST="3",
        PARLEY_ARGON2_MEMORY_KIB="65536",
        PARLEY_MAX_CONCURRENT_HASHES="1",
        PARLEY_MAX_WAITING_HASHES="2",
    ) as gateway:
        username = await api.new_user("fl")
        async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as http:

            async def attempt() -> httpx.Response:
                body = {"username": username, "password": "wrong-password"}
                return await http.post("/v1/sessions", json=body)

            answers = await asyncio.gather(*(attempt() for _ in range(10)))
            health = await http.get("/healthz")
        codes = Counter(a.status_code for a in answers)
        assert set(codes) <= {401, 429} and codes[429] >= 1 and codes[401] >= 1, codes
        busy = [a for a in answers if a.status_code == 429]
        assert all(a.json()["error"]["message"].startswith("the server is busy") for a in busy)
        assert health.status_code == 200
