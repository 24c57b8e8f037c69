"""Sessions at their edges: a socket closes when its token expires (unless the device renewed
it), an expired device is listed, revocable and pushed nothing, a hello racing its device's
revocation never leaves a socket open, and a login beyond the device cap signs out the least
recently active device (docs/protocol.md, "Close codes" and `POST /v1/sessions`)."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime

from parley_client import CloseCode, Login, Session
from schemas.ids import new_id, now_ms
from storage.protocols import PushEndpoint
from storage.stores import Stores
from tests.conftest import PASSWORD, Api, extra_gateway, handled
from tests.stack import Stack


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


async def expiry_of(api: Api, device: Login, auth: Login | None = None) -> int:
    listed = await api.devices(auth or device)
    return next(ms(d["expires_at"]) for d in listed if d["device_id"] == device.device_id)


async def until_clock(at_ms: int, timeout_s: float) -> None:
    """Until the wall clock reaches `at_ms` (the property under test is the clock's)."""
    wait_s = (at_ms - now_ms()) / 1000
    assert wait_s < timeout_s, "that is further off than the test allows"
    await asyncio.sleep(max(wait_s, 0) + 0.01)  # the clock itself, not another party


async def test_a_socket_closes_with_4001_when_its_token_expires(stack: Stack) -> None:
    async with (
        extra_gateway(stack, PARLEY_TOKEN_TTL_S="4") as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        device = await api.new_device("exp")
        expires_ms = await expiry_of(api, device)
        socket = await api.connect(device)
        async with socket.heartbeating(0.5):  # a heartbeating socket is not idle
            error = await socket.until(lambda f: f["type"] == "error", 30)
            code = await socket.wait_closed(10)
        assert error == {"type": "error", "code": "unauthorized", "message": "token expired"}
        assert code == CloseCode.UNAUTHORIZED and socket.close_reason == "token expired"
        assert now_ms() >= expires_ms - 50  # not before the expiry (clocks of one machine)

        # The expired device is still listed, marked by its past `expires_at`, and can be
        # revoked from another device of the account.
        other = await api.add_device(device.username)
        listed = {d["device_id"]: d for d in await api.devices(other)}
        assert set(listed) == {device.device_id, other.device_id}
        assert ms(listed[device.device_id]["expires_at"]) <= now_ms()
        assert ms(listed[other.device_id]["expires_at"]) > now_ms()
        assert [listed[d.device_id]["expired"] for d in (device, other)] == [True, False]
        await api.revoke_device(other, device.device_id)
        assert [d["device_id"] for d in await api.devices(other)] == [other.device_id]


async def test_a_socket_outlives_its_first_expiry_when_the_device_renewed(stack: Stack) -> None:
    async with (
        extra_gateway(stack, PARLEY_TOKEN_TTL_S="6") as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        device = await api.new_device("ren")
        first_expiry = await expiry_of(api, device)
        socket = await api.connect(device)
        async with socket.heartbeating(0.5):
            await until_clock(first_expiry - 3000, 10)
            renewed = await api.renew(device)
            second_expiry = ms(renewed["expires_at"])
            assert second_expiry >= first_expiry + 2000
            await until_clock(first_expiry + 1000, 10)
            await handled(socket)  # still open and served after the first expiry
            assert socket.close_code is None
            assert await socket.wait_closed(30) == CloseCode.UNAUTHORIZED
        assert socket.close_reason == "token expired"
        assert now_ms() >= second_expiry - 50


async def test_an_expired_device_gets_no_push(api: Api, stores: Stores) -> None:
    live = await api.new_device("pex")
    await api.register_push(live, "webhook", "live-handle")
    expired_id = new_id()
    await stores.accounts.create_device(
        expired_id, live.user_id, "old", new_id().encode(), now_ms() - 1000, 50
    )
    await stores.push.set_endpoint(PushEndpoint(live.user_id, expired_id, "webhook", "old"))
    found = await stores.push.endpoints([live.user_id])
    assert [e.device_id for e in found[live.user_id]] == [live.device_id]
    # Listed (expired) and revocable like any device of the account.
    assert {d["device_id"] for d in await api.devices(live)} == {live.device_id, expired_id}
    await api.revoke_device(live, expired_id)
    assert [d["device_id"] for d in await api.devices(live)] == [live.device_id]


async def test_no_socket_of_a_device_survives_a_revocation_racing_its_hellos(
    api: Api, stack: Stack
) -> None:
    # The sockets go to a gateway of their own: the revocation (made through the shared one)
    # reaches them only through the inbox, which is where the race was.
    async with (
        extra_gateway(stack) as gateway,
        Api(gateway.url, gateway.ws_url) as local,
    ):
        rng = random.Random(7)
        for _ in range(20):
            device = await api.new_device("race")

            async def hello(delay_s: float, device: Login = device) -> Session:
                await asyncio.sleep(delay_s)  # spread around the revocation, not a wait
                socket = await local.open()
                await socket.send_hello(device.token)
                return socket

            async def revoke(device: Login = device) -> None:
                await asyncio.sleep(rng.uniform(0, 0.03))
                await api.log_out(device)

            *sockets, _ = await asyncio.gather(
                *(hello(rng.uniform(0, 0.05)) for _ in range(4)), revoke()
            )
            deadline = time.monotonic() + 15
            for socket in sockets:
                left = max(deadline - time.monotonic(), 0.1)
                try:
                    code = await socket.wait_closed(left)
                except TimeoutError:
                    raise AssertionError("a socket of a revoked device stayed open") from None
                assert code == CloseCode.UNAUTHORIZED


async def test_a_login_beyond_the_device_cap_signs_out_the_least_recently_active_device(
    stack: Stack,
) -> None:
    async with (
        extra_gateway(stack, PARLEY_MAX_DEVICES_PER_USER="3") as gateway,
        Api(gateway.url, gateway.ws_url) as api,
    ):
        oldest = await api.new_device("cap")
        middle = await api.add_device(oldest.username)
        newest = await api.add_device(oldest.username)
        # Renewing is activity: the oldest login is now the latest to expire.
        renewed = await api.renew(oldest)
        oldest = Login(oldest.user_id, oldest.device_id, renewed["token"], oldest.username)
        socket = await api.connect(middle)

        fourth = await api.add_device(oldest.username, "fourth")  # 201, not refused
        assert await socket.wait_closed(15) == CloseCode.UNAUTHORIZED
        assert (await api.request("GET", "/v1/devices", auth=middle)).status_code == 401
        listed = [d["device_id"] for d in await api.devices(fourth)]
        assert listed == [oldest.device_id, newest.device_id, fourth.device_id]

        # Again: now `newest` is the soonest to expire.
        await api.add_device(oldest.username)
        assert (await api.request("GET", "/v1/devices", auth=newest)).status_code == 401

        # The answer names the device a login signed out.
        answer = await api.request(
            "POST", "/v1/sessions", json={"username": oldest.username, "password": PASSWORD}
        )
        assert answer.status_code == 201
        body = answer.json()
        (gone,) = body["signed_out"]
        latest = Login(body["user_id"], body["device_id"], body["token"], oldest.username)
        listed = [d["device_id"] for d in await api.devices(latest)]
        assert gone not in listed and latest.device_id in listed
