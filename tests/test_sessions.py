"""Devices and sessions: list a user's devices, revoke one or all (their sockets close at once),
renew a token (the old one stops working), tokens expire, and a device's sockets are capped
(SPEC §2)."""

from __future__ import annotations

import asyncio
import time

import httpx

from parley_client import Login, Session
from tests.conftest import PASSWORD, Api, extra_gateway
from tests.stack import Stack


async def closed(socket: Session) -> int | None:
    return await socket.wait_closed(10)


async def status(api: Api, device: Login, base_url: str | None = None) -> int:
    url = f"{base_url or ''}/v1/devices"
    return (await api.request("GET", url, auth=device)).status_code


async def test_devices_are_listed_and_revoking_one_closes_its_sockets_only(api: Api) -> None:
    phone = await api.new_device("dv")
    laptop = await api.add_device(phone.username, "laptop")
    listed = (await api.request("GET", "/v1/devices", auth=laptop)).json()["devices"]
    assert [(d["device_id"], d["name"], d["current"]) for d in listed] == [
        (phone.device_id, None, False),
        (laptop.device_id, "laptop", True),
    ]
    assert all(d["expires_at"] > d["created_at"] for d in listed)
    phone_socket, laptop_socket = await api.connect(phone), await api.connect(laptop)

    revoked = await api.request("DELETE", f"/v1/devices/{phone.device_id}", auth=laptop)
    assert revoked.status_code == 204
    assert await closed(phone_socket) == 4001
    assert await status(api, phone) == 401
    assert await status(api, laptop) == 200
    assert laptop_socket.close_code is None

    # Someone else's device, or no device at all: not found, and nothing revoked.
    other = await api.new_device("dv_other")
    for device_id in (other.device_id, "12345"):
        response = await api.request("DELETE", f"/v1/devices/{device_id}", auth=laptop)
        assert response.status_code == 404, response.text
    assert await status(api, other) == 200
    response = await api.request("DELETE", "/v1/devices/abc", auth=laptop)
    assert response.status_code == 422


async def test_revoking_all_devices_closes_every_socket_and_refuses_every_token(api: Api) -> None:
    first = await api.new_device("dva")
    second = await api.add_device(first.username)
    sockets = [await api.connect(first), await api.connect(second)]
    assert (await api.request("DELETE", "/v1/devices", auth=first)).status_code == 204
    assert [await closed(s) for s in sockets] == [4001, 4001]
    assert [await status(api, d) for d in (first, second)] == [401, 401]


async def test_a_renewed_token_works_and_the_old_one_stops_at_once(api: Api) -> None:
    device = await api.new_device("rn")
    before = (await api.request("GET", "/v1/devices", auth=device)).json()["devices"][0]
    renewed = await api.request("POST", "/v1/sessions/current/renew", auth=device)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["device_id"] == device.device_id and body["token"] != device.token
    assert body["expires_at"] >= before["expires_at"]
    fresh = Login(device.user_id, device.device_id, body["token"], device.username)
    assert await status(api, fresh) == 200
    assert await status(api, device) == 401
    again = await api.request("POST", "/v1/sessions/current/renew", auth=device)
    assert again.status_code == 401


async def test_an_expired_token_is_refused_until_the_user_logs_in_again(
    api: Api, stack: Stack
) -> None:
    async with (
        extra_gateway(stack, PARLEY_TOKEN_TTL_S="2") as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as http,
    ):
        username = await api.new_user("ex")
        login = await http.post("/v1/sessions", json={"username": username, "password": PASSWORD})
        token = login.json()["token"]
        auth = {"authorization": f"Bearer {token}"}
        assert (await http.get("/v1/devices", headers=auth)).status_code == 200
        # The property is the clock's: wait until the token's own expiry has passed.
        deadline = time.monotonic() + 30
        while (await http.get("/v1/devices", headers=auth)).status_code == 200:
            assert time.monotonic() < deadline, "the token never expired"
            await asyncio.sleep(0.2)
        assert (await http.get("/v1/devices", headers=auth)).status_code == 401
        again = await http.post("/v1/sessions", json={"username": username, "password": PASSWORD})
        assert again.status_code == 201


async def test_a_device_has_at_most_its_socket_cap(api: Api, stack: Stack) -> None:
    # The device cap (a login beyond it signs out the least recently active device) is
    # tested in tests/test_sessions_expiry.py.
    async with (
        extra_gateway(stack, PARLEY_MAX_SOCKETS_PER_DEVICE="2") as gateway,
        Api(gateway.url, gateway.ws_url) as local,
    ):
        first = await local.new_device("cap")
        kept = [await local.connect(first), await local.connect(first)]
        refused = await local.open()
        await refused.send_frame({"type": "hello", "token": first.token})
        error = await refused.next()
        assert error == {**error, "type": "error", "code": "rate_limited"}
        assert await closed(refused) == 4009
        assert [s.close_code for s in kept] == [None, None]
        await kept[0].close()
        # One closed: room for another.
        await kept[0].wait_closed(10)
        await local.connect(first)
