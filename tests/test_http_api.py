"""The HTTP API (SPEC §2): every call, every error, in the spec's error shape."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.tokens import Passwords
from tests.client import PASSWORD, Api


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_sign_up_returns_the_user_and_refuses_taken_and_invalid_names(api: Api) -> None:
    response = await api.http.post(
        "/v1/users", json={"username": "new_user.x-1", "password": PASSWORD}
    )
    if response.status_code == 409:  # a previous run's database
        return
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "new_user.x-1" and body["user_id"].isdigit()
    taken = await api.http.post(
        "/v1/users", json={"username": "new_user.x-1", "password": PASSWORD}
    )
    error(taken, 409, "username_taken")


async def test_sign_up_validates_username_and_password(api: Api) -> None:
    for body in [
        {"username": "ab", "password": PASSWORD},
        {"username": "x" * 33, "password": PASSWORD},
        {"username": "UPPER", "password": PASSWORD},
        {"username": "spa ce", "password": PASSWORD},
        {"username": "okname", "password": "short"},
        {"username": "okname", "password": "p" * 129},
        {"username": "okname"},
        {"password": PASSWORD},
        {"username": 5, "password": PASSWORD},
    ]:
        error(await api.http.post("/v1/users", json=body), 422, "invalid")
    error(await api.http.post("/v1/users", content=b"{not json"), 422, "invalid")
    error(await api.http.post("/v1/users", content=b"[1]"), 422, "invalid")


async def test_login_makes_a_new_device_per_login_and_rejects_bad_credentials(api: Api) -> None:
    name = await api.signup()
    one, two = await api.login(name, "phone"), await api.login(name, "laptop")
    assert one.user_id == two.user_id and one.device_id != two.device_id and one.token != two.token
    wrong = await api.http.post(
        "/v1/sessions", json={"username": name, "password": "wrong password"}
    )
    error(wrong, 401, "bad_credentials")
    nobody = await api.http.post(
        "/v1/sessions", json={"username": "nobody_here_x", "password": PASSWORD}
    )
    error(nobody, 401, "bad_credentials")


async def test_password_hashes_verify_whatever_the_cost_settings_are_now() -> None:
    """The argon2 cost is a setting (tests run cheap); a hash made under other settings, such
    as the production default, still verifies, and a wrong password still fails."""
    production, cheap = Passwords(3, 64 * 1024, 4), Passwords(1, 8192, 1)
    made = await production.hash(PASSWORD)
    assert made.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await cheap.verify(made, PASSWORD)
    assert not await cheap.verify(made, PASSWORD + "x")
    assert not await cheap.verify(None, PASSWORD)
    assert not await cheap.verify("not a hash", PASSWORD)


async def test_missing_invalid_and_revoked_tokens_get_401(api: Api) -> None:
    device = await api.new_device()
    error(await api.http.get("/v1/channels"), 401, "unauthorized")
    error(
        await api.http.get("/v1/channels", headers={"authorization": "Bearer nope"}),
        401,
        "unauthorized",
    )
    error(
        await api.http.get("/v1/channels", headers={"authorization": device.token}),
        401,
        "unauthorized",
    )
    assert (await api.http.get("/v1/channels", headers=device.auth)).status_code == 200
    assert (await api.http.delete("/v1/sessions/current", headers=device.auth)).status_code == 204
    error(await api.http.get("/v1/channels", headers=device.auth), 401, "unauthorized")
    error(await api.http.delete("/v1/sessions/current", headers=device.auth), 401, "unauthorized")


async def test_logout_closes_that_devices_sockets_only(api: Api) -> None:
    name = await api.signup()
    phone, laptop = await api.login(name), await api.login(name)
    p, lap = await api.connect(phone), await api.connect(laptop)
    assert (await api.http.delete("/v1/sessions/current", headers=phone.auth)).status_code == 204
    await asyncio.wait_for(p.ws.wait_closed(), 10)
    assert p.ws.close_code == 4001
    await lap.send({"type": "heartbeat"})
    await lap.settle(0.3)
    assert lap.ws.close_code is None


async def test_discovery_lists_this_gateway(api: Api) -> None:
    device = await api.new_device()
    response = await api.http.get("/v1/discovery", headers=device.auth)
    assert response.status_code == 200
    assert {"url": api.ws_url} in response.json()["gateways"]


async def test_direct_channel_is_one_per_pair_whoever_opens_it(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    first = await api.http.post(
        "/v1/channels", json={"type": "direct", "user_id": b.user_id}, headers=a.auth
    )
    assert first.status_code == 201
    again = await api.http.post(
        "/v1/channels", json={"type": "direct", "user_id": b.user_id}, headers=a.auth
    )
    other = await api.http.post(
        "/v1/channels", json={"type": "direct", "user_id": a.user_id}, headers=b.auth
    )
    assert again.status_code == other.status_code == 200
    assert first.json()["channel_id"] == again.json()["channel_id"] == other.json()["channel_id"]
    assert first.json()["type"] == "direct"
    assert sorted(first.json()["members"]) == sorted([a.user_id, b.user_id])


async def test_direct_channel_opened_concurrently_is_still_one(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    results = await asyncio.gather(*(api.direct(a, b.user_id) for _ in range(8)))
    assert len(set(results)) == 1


async def test_direct_channel_errors(api: Api) -> None:
    a = await api.new_device()
    post = api.http.post
    error(
        await post("/v1/channels", json={"type": "direct", "user_id": a.user_id}, headers=a.auth),
        422,
        "invalid",
    )
    error(
        await post("/v1/channels", json={"type": "direct", "user_id": "123"}, headers=a.auth),
        404,
        "not_found",
    )
    error(await post("/v1/channels", json={"type": "direct"}, headers=a.auth), 422, "invalid")
    error(await post("/v1/channels", json={"type": "circle"}, headers=a.auth), 422, "invalid")


async def test_group_of_100_is_allowed_and_101_is_group_full(api: Api) -> None:
    devices = await asyncio.gather(*(api.new_device("gf") for _ in range(101)))
    owner = devices[0]
    ids = [d.user_id for d in devices[1:]]
    full = await api.http.post(
        "/v1/channels",
        json={"type": "group", "name": "too big", "member_ids": ids},
        headers=owner.auth,
    )
    error(full, 422, "group_full")
    ok = await api.http.post(
        "/v1/channels",
        json={"type": "group", "name": "just right", "member_ids": ids[:99]},
        headers=owner.auth,
    )
    assert ok.status_code == 201
    body = ok.json()
    assert body["type"] == "group" and body["name"] == "just right" and len(body["members"]) == 100
    added = await api.http.post(
        f"/v1/channels/{body['channel_id']}/members", json={"user_id": ids[99]}, headers=owner.auth
    )
    error(added, 422, "group_full")


async def test_group_members_add_and_remove_and_their_errors(api: Api) -> None:
    a, b, c, outsider = [await api.new_device() for _ in range(4)]
    channel = await api.group(a, [b.user_id])
    members = f"/v1/channels/{channel}/members"
    assert (
        await api.http.post(members, json={"user_id": c.user_id}, headers=b.auth)
    ).status_code == 204
    assert (
        await api.http.post(members, json={"user_id": c.user_id}, headers=b.auth)
    ).status_code == 204
    listed = (await api.http.get("/v1/channels", headers=c.auth)).json()["channels"]
    assert [ch["channel_id"] for ch in listed] == [channel]
    assert sorted(listed[0]["members"]) == sorted([a.user_id, b.user_id, c.user_id])
    error(
        await api.http.post(members, json={"user_id": outsider.user_id}, headers=outsider.auth),
        403,
        "not_member",
    )
    error(await api.http.post(members, json={"user_id": "42"}, headers=a.auth), 404, "not_found")
    error(await api.http.post(members, json={}, headers=a.auth), 422, "invalid")
    error(await api.http.delete(f"{members}/{a.user_id}", headers=outsider.auth), 403, "not_member")
    assert (await api.http.delete(f"{members}/{c.user_id}", headers=a.auth)).status_code == 204
    assert (await api.http.get("/v1/channels", headers=c.auth)).json()["channels"] == []
    error(await api.http.get(f"/v1/channels/{channel}/messages", headers=c.auth), 403, "not_member")
    direct = await api.direct(a, b.user_id)
    error(
        await api.http.post(
            f"/v1/channels/{direct}/members", json={"user_id": c.user_id}, headers=a.auth
        ),
        422,
        "invalid",
    )


async def test_channel_list_carries_last_message_id(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    listed = (await api.http.get("/v1/channels", headers=a.auth)).json()["channels"]
    assert listed[0]["last_message_id"] is None
    socket = await api.connect(a)
    for i in range(3):
        await socket.send_text(channel, f"t{i}")
    last = (await socket.collect_messages(channel, 3))[-1]
    listed = (await api.http.get("/v1/channels", headers=a.auth)).json()["channels"]
    assert listed == [
        {
            "channel_id": channel,
            "type": "direct",
            "members": sorted([a.user_id, b.user_id]),
            "last_message_id": last["message_id"],
        }
    ]


async def test_history_pages_before_after_around_line_up_with_what_was_delivered(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    for i in range(120):
        await socket.send_text(channel, f"h{i}")
    delivered = [
        {k: v for k, v in m.items() if k != "type"}
        for m in await socket.collect_messages(channel, 120)
    ]
    ids = [m["message_id"] for m in delivered]

    async def page(**params: Any) -> list[dict[str, Any]]:
        return await api.history(b, channel, **params)

    assert await page() == delivered[-50:]
    assert await page(limit=100) == delivered[-100:]
    assert await page(limit=1) == delivered[-1:]
    assert await page(before=ids[50], limit=10) == delivered[40:50]
    assert await page(before=ids[5]) == delivered[:5]
    assert await page(after=ids[50], limit=10) == delivered[51:61]
    assert await page(after=ids[-1]) == []
    assert await page(around=ids[60], limit=11) == delivered[55:66]
    assert await page(around=ids[0], limit=10) == delivered[:10]
    assert await api.all_history(b, channel) == delivered
    for bad in [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"before": "abc"},
        {"before": ids[1], "after": ids[0]},
    ]:
        response = await api.http.get(
            f"/v1/channels/{channel}/messages", params=bad, headers=b.auth
        )
        error(response, 422, "invalid")
    outsider = await api.new_device()
    error(
        await api.http.get(f"/v1/channels/{channel}/messages", headers=outsider.auth),
        403,
        "not_member",
    )
    error(await api.http.get("/v1/channels/999/messages", headers=outsider.auth), 403, "not_member")


async def test_healthz_metrics_and_unknown_routes(api: Api) -> None:
    assert (await api.http.get("/healthz")).json()["status"] == "ok"
    metrics = await api.http.get("/metrics")
    assert metrics.status_code == 200 and "parley_gateway_connections" in metrics.text
    error(await api.http.get("/v1/nothing"), 404, "not_found")
