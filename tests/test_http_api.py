"""The HTTP API (SPEC §2): every call, every error, in the spec's error shape."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest

from gateway.tokens import Passwords
from parley_client import ApiError, SessionError
from tests.conftest import PASSWORD, Api


def error(response: httpx.Response, status: int, code: str) -> None:
    """The response is the spec's error envelope, and nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def refused(call: Awaitable[object], status: int, code: str) -> None:
    """The call raised ApiError with this status and error code (and a message)."""
    with pytest.raises(ApiError) as caught:
        await call
    assert (caught.value.status, caught.value.code) == (status, code), caught.value
    assert caught.value.message


async def test_sign_up_returns_the_user_and_refuses_a_taken_username(api: Api) -> None:
    username = await api.new_user("taken")
    account = await api.sign_up(f"{username}.x-1", PASSWORD)
    assert account.username == f"{username}.x-1" and account.user_id.isdigit()
    await refused(api.sign_up(username, PASSWORD), 409, "username_taken")


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
        error(await api.request("POST", "/v1/users", json=body), 422, "invalid")
    error(await api.request("POST", "/v1/users", content=b"{not json"), 422, "invalid")
    error(await api.request("POST", "/v1/users", content=b"[1]"), 422, "invalid")


async def test_login_makes_a_new_device_per_login_and_rejects_bad_credentials(api: Api) -> None:
    name = await api.new_user()
    one, two = await api.add_device(name, "phone"), await api.add_device(name, "laptop")
    assert one.user_id == two.user_id and one.device_id != two.device_id and one.token != two.token
    await refused(api.log_in(name, "wrong password"), 401, "bad_credentials")
    await refused(api.log_in("nobody_here_x", PASSWORD), 401, "bad_credentials")


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
    error(await api.request("GET", "/v1/channels"), 401, "unauthorized")
    for header in ("Bearer nope", device.token):  # an unknown token; a token without scheme
        response = await api.http.get("/v1/channels", headers={"authorization": header})
        error(response, 401, "unauthorized")
    assert await api.channels(device) == []
    await api.log_out(device)
    await refused(api.channels(device), 401, "unauthorized")
    await refused(api.log_out(device), 401, "unauthorized")


async def test_logout_closes_that_devices_sockets_only(api: Api) -> None:
    name = await api.new_user()
    phone, laptop = await api.add_device(name), await api.add_device(name)
    p, lap = await api.connect(phone), await api.connect(laptop)
    await api.log_out(phone)
    assert await p.wait_closed() == 4001
    # The laptop's socket still serves: a frame sent now is answered.
    await lap.send_frame({"type": "teleport"})
    assert (await lap.next())["code"] == "invalid"
    assert lap.is_open
    with pytest.raises(SessionError) as caught:
        await api.connect(phone)
    assert caught.value.kind == "error_unauthorized"


async def test_discovery_lists_this_gateway(api: Api) -> None:
    device = await api.new_device()
    assert api.ws_url in await api.discovery(device)


async def test_direct_channel_is_one_per_pair_whoever_opens_it(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    first = await api.request(
        "POST", "/v1/channels", json={"type": "direct", "user_id": b.user_id}, auth=a
    )
    assert first.status_code == 201
    again = await api.request(
        "POST", "/v1/channels", json={"type": "direct", "user_id": b.user_id}, auth=a
    )
    assert again.status_code == 200
    other = await api.open_direct(b, a.user_id)
    assert first.json()["channel_id"] == again.json()["channel_id"] == other["channel_id"]
    assert other["type"] == "direct" and other["last_message_id"] is None
    assert sorted(other["members"]) == sorted([a.user_id, b.user_id])


async def test_direct_channel_opened_concurrently_is_still_one(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    results = await asyncio.gather(*(api.direct(a, b.user_id) for _ in range(8)))
    assert len(set(results)) == 1


async def test_a_direct_channel_needs_another_existing_user_and_a_known_type(api: Api) -> None:
    a = await api.new_device()
    await refused(api.open_direct(a, a.user_id), 422, "invalid")
    await refused(api.open_direct(a, "123"), 404, "not_found")
    for body in ({"type": "direct"}, {"type": "circle"}):
        error(await api.request("POST", "/v1/channels", json=body, auth=a), 422, "invalid")


async def test_group_of_100_is_allowed_and_101_is_group_full(api: Api) -> None:
    devices = await asyncio.gather(*(api.new_device("gf") for _ in range(101)))
    owner = devices[0]
    ids = [d.user_id for d in devices[1:]]
    await refused(api.create_group(owner, "too big", ids), 422, "group_full")
    group = await api.create_group(owner, "just right", ids[:99])
    assert group["type"] == "group" and group["name"] == "just right"
    assert len(group["members"]) == 100
    await refused(api.add_member(owner, group["channel_id"], ids[99]), 422, "group_full")


async def test_the_owner_adds_and_removes_members_and_outsiders_and_direct_channels_refuse(
    api: Api,
) -> None:
    a, b, c, outsider = [await api.new_device() for _ in range(4)]
    channel = await api.group(a, [b.user_id])
    await api.add_member(a, channel, c.user_id)
    await api.add_member(a, channel, c.user_id)  # already a member: still 204
    await refused(api.add_member(b, channel, outsider.user_id), 403, "forbidden")
    listed = await api.channels(c)
    assert [ch["channel_id"] for ch in listed] == [channel]
    assert sorted(listed[0]["members"]) == sorted([a.user_id, b.user_id, c.user_id])
    await refused(api.add_member(outsider, channel, outsider.user_id), 403, "not_member")
    await refused(api.add_member(a, channel, "42"), 404, "not_found")
    error(
        await api.request("POST", f"/v1/channels/{channel}/members", json={}, auth=a),
        422,
        "invalid",
    )
    await refused(api.remove_member(outsider, channel, a.user_id), 403, "not_member")
    await api.remove_member(a, channel, c.user_id)
    assert await api.channels(c) == []
    await refused(api.history(c, channel), 403, "not_member")
    direct = await api.direct(a, b.user_id)
    await refused(api.add_member(a, direct, c.user_id), 422, "invalid")


async def test_channel_list_carries_last_message_id(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    assert [c["last_message_id"] for c in await api.channels(a)] == [None]
    socket = await api.connect(a)
    for i in range(3):
        await socket.send_message(channel, f"t{i}")
    last = (await socket.collect_messages(channel, 3))[-1]
    assert await api.channels(a) == [
        {
            "channel_id": channel,
            "type": "direct",
            "members": sorted([a.user_id, b.user_id]),
            "history_visible": True,  # a direct channel: both members see all of it
            "last_message_id": last["message_id"],
            "read_message_id": None,
            "unread_count": 0,  # the caller's own messages
            "mention_count": 0,
            "notifications": {"level": "all", "muted_until": None, "version": 0},
        }
    ]
    assert await api.last_message_ids(a) == {channel: last["message_id"]}


async def test_history_pages_before_after_around_line_up_with_what_was_delivered(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    for i in range(120):
        await socket.send_message(channel, f"h{i}")
    delivered = [
        {k: v for k, v in m.items() if k != "type"}
        for m in await socket.collect_messages(channel, 120)
    ]
    ids = [m["message_id"] for m in delivered]

    async def page(**params: Any) -> list[Any]:
        return list(await api.history(b, channel, **params))

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
        {"before": "abc"},
        {"before": ids[1], "after": ids[0]},
    ]:
        await refused(api.history(b, channel, **bad), 422, "invalid")
    error(
        await api.request("GET", f"/v1/channels/{channel}/messages?limit=x", auth=b),
        422,
        "invalid",
    )
    outsider = await api.new_device()
    await refused(api.history(outsider, channel), 403, "not_member")
    await refused(api.history(outsider, "999"), 403, "not_member")


async def test_healthz_says_ok_metrics_are_served_and_an_unknown_route_is_404(api: Api) -> None:
    assert (await api.healthz())["status"] == "ok"
    assert "parley_gateway_connections" in await api.metrics()
    error(await api.request("GET", "/v1/nothing"), 404, "not_found")
