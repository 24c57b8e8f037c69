"""Presence and friends (SPEC §2, §3, §4): online while any device heartbeats, offline after the
timeout (4 s in tests) or at once on the last logout, no flap on a quick reconnect, state kept
across a processor crash, and visible only to friends and channel co-members."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schemas.settings import Settings
from storage.protocols import Presence
from storage.stores import open_stores
from tests.client import Api, Device, Socket
from tests.stack import Process, Stack

TIMEOUT_S = 4.0


async def friends(api: Api, a: Device, b: Device) -> None:
    assert (await api.http.put(f"/v1/friends/{b.user_id}", headers=a.auth)).json()[
        "status"
    ] == "requested"
    assert (await api.http.put(f"/v1/friends/{a.user_id}", headers=b.auth)).json()[
        "status"
    ] == "friend"


def presence_of(socket: Socket, user_id: str) -> list[str]:
    return [
        f["status"] for f in socket.frames if f["type"] == "presence" and f["user_id"] == user_id
    ]


@contextlib.asynccontextmanager
async def heartbeating(socket: Socket) -> AsyncIterator[None]:
    async def beat() -> None:
        with contextlib.suppress(Exception):
            while True:
                await socket.send({"type": "heartbeat"})
                await asyncio.sleep(0.3)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def watching(api: Api) -> tuple[Device, Device, Socket]:
    """A watcher and a friend of theirs, with the watcher's socket subscribed to the friend."""
    watcher, user = await api.new_device(), await api.new_device()
    await friends(api, watcher, user)
    w = await api.connect(watcher)
    await subscribe(w, user.user_id)
    return watcher, user, w


async def wait_status(
    socket: Socket, user_id: str, status: str, timeout: float = 15
) -> dict[str, Any]:
    return await socket.until(
        lambda f: f["type"] == "presence" and f["user_id"] == user_id and f["status"] == status,
        timeout,
    )


async def subscribe(socket: Socket, *user_ids: str) -> list[dict[str, Any]]:
    await socket.send({"type": "presence.subscribe", "user_ids": list(user_ids)})
    return [await socket.until(lambda f: f["type"] in ("presence", "error")) for _ in user_ids]


async def test_friend_requests_accept_list_and_remove(api: Api) -> None:
    a, b, c = await api.new_device("fa"), await api.new_device("fb"), await api.new_device("fc")
    put, get, delete = api.http.put, api.http.get, api.http.delete
    assert (await put(f"/v1/friends/{b.user_id}", headers=a.auth)).json() == {
        "user_id": b.user_id,
        "status": "requested",
    }
    assert (await put(f"/v1/friends/{b.user_id}", headers=a.auth)).json()["status"] == "requested"
    mine = (await get("/v1/friends", headers=a.auth)).json()["friends"]
    theirs = (await get("/v1/friends", headers=b.auth)).json()["friends"]
    assert [(f["user_id"], f["status"]) for f in mine] == [(b.user_id, "requested")]
    assert [(f["user_id"], f["status"], f["username"]) for f in theirs] == [
        (a.user_id, "pending", a.username)
    ]
    assert "presence" not in mine[0]
    assert (await put(f"/v1/friends/{a.user_id}", headers=b.auth)).json()["status"] == "friend"
    mine = (await get("/v1/friends", headers=a.auth)).json()["friends"]
    assert mine == [
        {
            "user_id": b.user_id,
            "username": b.username,
            "display_name": None,
            "status": "friend",
            "presence": {"status": "offline", "last_active_at": None},
        }
    ]
    # Decline: c asks a, a declines; and unfriend: a removes b.
    await put(f"/v1/friends/{a.user_id}", headers=c.auth)
    assert (await delete(f"/v1/friends/{c.user_id}", headers=a.auth)).status_code == 204
    assert (await get("/v1/friends", headers=c.auth)).json()["friends"] == []
    assert (await delete(f"/v1/friends/{b.user_id}", headers=a.auth)).status_code == 204
    assert (await delete(f"/v1/friends/{b.user_id}", headers=a.auth)).status_code == 204
    assert (await get("/v1/friends", headers=a.auth)).json()["friends"] == []
    for method in (put, delete):
        unknown = await method("/v1/friends/4242", headers=a.auth)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        myself = await method(f"/v1/friends/{a.user_id}", headers=a.auth)
        assert myself.status_code == 422 and myself.json()["error"]["code"] == "invalid"
    assert (await get("/v1/friends")).status_code == 401


async def test_two_users_asking_each_other_at_once_become_friends(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    results = await asyncio.gather(
        api.http.put(f"/v1/friends/{b.user_id}", headers=a.auth),
        api.http.put(f"/v1/friends/{a.user_id}", headers=b.auth),
    )
    assert sorted(r.json()["status"] for r in results) == ["friend", "requested"]
    assert (await api.http.get("/v1/friends", headers=a.auth)).json()["friends"][0][
        "status"
    ] == "friend"


async def test_only_friends_and_channel_co_members_may_watch_presence(api: Api) -> None:
    me, friend, mate, stranger = [await api.new_device() for _ in range(4)]
    await friends(api, me, friend)
    await api.group(me, [mate.user_id])
    ok = await api.http.get(
        "/v1/presence", params={"user_ids": f"{friend.user_id},{mate.user_id}"}, headers=me.auth
    )
    assert ok.status_code == 200
    assert [p["user_id"] for p in ok.json()["presence"]] == [friend.user_id, mate.user_id]
    refused = await api.http.get(
        "/v1/presence", params={"user_ids": f"{friend.user_id},{stranger.user_id}"}, headers=me.auth
    )
    assert refused.status_code == 403 and refused.json() == {
        "error": {
            "code": "not_member",
            "message": "you may watch only friends and people you share a channel with",
        }
    }
    assert (await api.http.get("/v1/presence", headers=me.auth)).status_code == 422
    too_many = ",".join(str(i) for i in range(1, 502))
    assert (
        await api.http.get("/v1/presence", params={"user_ids": too_many}, headers=me.auth)
    ).status_code == 422

    socket = await api.connect(me)
    [frame] = await subscribe(socket, stranger.user_id)
    assert frame["type"] == "error" and frame["code"] == "not_member"
    assert presence_of(socket, stranger.user_id) == []
    snapshot = await subscribe(socket, friend.user_id, mate.user_id)
    assert [(f["user_id"], f["status"]) for f in snapshot] == [
        (friend.user_id, "offline"),
        (mate.user_id, "offline"),
    ]


async def test_a_subscription_ends_with_the_friendship_or_the_shared_channel(api: Api) -> None:
    me, friend, mate, both, control = [await api.new_device() for _ in range(5)]
    await friends(api, me, friend)
    await friends(api, me, both)
    await friends(api, me, control)
    channel = await api.group(me, [mate.user_id, both.user_id])
    w = await api.connect(me)
    watched = (friend, mate, both, control)
    await subscribe(w, *(d.user_id for d in watched))
    sockets = [await api.connect(d) for d in watched]
    for device in watched:
        await wait_status(w, device.user_id, "online")

    # The friend ends the friendship; the mate leaves the group; `both` is unfriended but
    # still shares the group, so may still be watched.
    assert (await api.http.delete(f"/v1/friends/{me.user_id}", headers=friend.auth)).is_success
    assert (await api.http.delete(f"/v1/friends/{me.user_id}", headers=both.auth)).is_success
    left = await api.http.delete(
        f"/v1/channels/{channel}/members/{mate.user_id}", headers=mate.auth
    )
    assert left.status_code == 204
    await asyncio.sleep(2.0)  # for the gateway to check the subscriptions again
    for socket in sockets:
        await socket.close()
    for device in watched:  # logging out takes each offline at once
        assert (await api.http.delete("/v1/sessions/current", headers=device.auth)).is_success
    deadline = time.monotonic() + 15
    # The users still watched are seen logging out...
    while any(presence_of(w, d.user_id)[-1] != "offline" for d in (control, both)):
        assert time.monotonic() < deadline, "the watched users' logouts never arrived"
        await w.settle(0.2)
    await w.settle(1.0)  # ...and by now the others' would have arrived too
    assert presence_of(w, friend.user_id) == ["offline", "online"]
    assert presence_of(w, mate.user_id) == ["offline", "online"]


async def test_online_while_any_device_heartbeats_offline_after_the_timeout(api: Api) -> None:
    watcher, user = await api.new_device(), await api.new_device()
    second = await api.login(user.username, "second device")
    await friends(api, watcher, user)
    w = await api.connect(watcher)
    assert (await subscribe(w, user.user_id))[0]["status"] == "offline"

    one = await api.connect(user)
    async with heartbeating(one):
        online = await wait_status(w, user.user_id, "online")
        assert online["last_active_at"].endswith("Z")
        two = await api.connect(second)
        async with heartbeating(two):
            await one.close()
            await asyncio.sleep(TIMEOUT_S + 1.5)  # the closed device's liveness runs out...
            assert presence_of(w, user.user_id) == [
                "offline",
                "online",
            ]  # ...but the other heartbeats
            silent_from = time.time()
    offline = await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 10)
    assert presence_of(w, user.user_id) == ["offline", "online", "offline"]
    seen = (
        await api.http.get("/v1/presence", params={"user_ids": user.user_id}, headers=watcher.auth)
    ).json()
    assert seen["presence"][0]["status"] == "offline"
    assert seen["presence"][0]["last_active_at"] == offline["last_active_at"]
    assert offline["last_active_at"] <= time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(silent_from + 1)
    )


async def test_logout_of_the_last_device_is_offline_at_once(api: Api) -> None:
    _, user, w = await watching(api)
    socket = await api.connect(user)
    async with heartbeating(socket):
        await wait_status(w, user.user_id, "online")
        await api.http.delete("/v1/sessions/current", headers=user.auth)
        started = time.monotonic()
        await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S)
    # Well inside the heartbeat timeout: the logout itself took the user offline.
    assert time.monotonic() - started < TIMEOUT_S * 0.75


async def test_a_quick_reconnect_causes_no_flap(api: Api) -> None:
    _, user, w = await watching(api)
    first = await api.connect(user)
    async with heartbeating(first):
        await wait_status(w, user.user_id, "online")
    await first.close()  # like a tunnel: the socket is gone for a moment
    await asyncio.sleep(1.0)
    again = await api.connect(user)
    async with heartbeating(again):
        await w.settle(TIMEOUT_S + 1.5)
        assert presence_of(w, user.user_id) == ["offline", "online"]


@pytest.fixture
async def second_gateway(stack: Stack) -> AsyncIterator[Process]:
    gateway = await asyncio.to_thread(stack.start_gateway)
    yield gateway
    await asyncio.to_thread(gateway.stop)


async def test_a_subscriber_on_one_gateway_sees_changes_made_on_another(
    api: Api, second_gateway: Process
) -> None:
    watcher, user = await api.new_device(), await api.new_device()
    await friends(api, watcher, user)
    w = await api.connect(watcher, url=second_gateway.ws_url)
    await subscribe(w, user.user_id)
    socket = await api.connect(user)
    async with heartbeating(socket):
        await wait_status(w, user.user_id, "online")
    await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 10)


async def test_processor_sigkill_keeps_presence_and_timeouts_still_fire(
    api: Api, stack: Stack
) -> None:
    _, user, w = await watching(api)
    socket = await api.connect(user)
    async with heartbeating(socket):
        online = await wait_status(w, user.user_id, "online")
        processor = next(
            p for p in stack.processes if p.role == "processor" and p.popen.poll() is None
        )
        await asyncio.to_thread(processor.kill)
        await asyncio.to_thread(stack.start_processor)
        await w.settle(TIMEOUT_S + 1.0)
        # No one was flipped offline by the restart.
        assert presence_of(w, user.user_id) == ["offline", "online"]
    # The restarted processor still times out a user who goes silent, with last seen kept.
    offline = await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 15)
    assert offline["last_active_at"] >= online["last_active_at"]


async def test_several_changes_of_one_user_in_one_batch_are_saved_as_the_last(
    api: Api, settings: Settings
) -> None:
    """A connect and a close (or an online and an offline) in one processor batch."""
    user = await api.new_device()
    stores = await open_stores(settings)
    try:
        await stores.presence.save(
            [
                (Presence(user.user_id, "online", 1_000, connected=True), 0),
                (Presence(user.user_id, "online", 2_000, connected=False), 0),
            ]
        )
        assert (await stores.presence.get([user.user_id]))[user.user_id] == Presence(
            user.user_id, "online", 2_000, connected=False
        )
    finally:
        await stores.close()
