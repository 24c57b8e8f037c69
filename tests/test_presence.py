"""Presence and friends (SPEC §2, §3, §4): online while any device heartbeats, offline after the
timeout (4 s in tests) or at once on the last logout, no flap on a quick reconnect, state kept
across a processor crash, and visible only to friends and channel co-members.

Absence of a change is shown by a marker: a user whose presence shares the partition of the
user under test (a "neighbour") and who goes offline by timeout after them. The processor
decides and publishes one partition's changes in order, and a gateway forwards them in order,
so once the neighbour's offline arrives, any change of the user decided before it has too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley_client import ApiError, Login, Session
from schemas.settings import Settings
from storage.protocols import Presence
from storage.stores import Stores
from tests.conftest import Api, eventually, metric, wait_connected
from tests.stack import Process, Stack
from topics.definitions import key_partition

TIMEOUT_S = 4.0  # PARLEY_HEARTBEAT_TIMEOUT_S in tests
# Faster than the gateway passes heartbeats on (a quarter of the timeout), so none is missed.
BEAT_S = 0.3


def presence_of(socket: Session, user_id: str) -> list[str]:
    return [
        f["status"]
        for f in socket.frames or []
        if f["type"] == "presence" and f["user_id"] == user_id
    ]


async def watching(api: Api, settings: Settings) -> tuple[Login, Login, Session]:
    """A friend of a watcher's, and the friend's neighbour; the watcher's socket watches both."""
    watcher, user = await api.new_device(), await api.new_device()
    await api.make_friends(watcher, user)
    marker = await neighbour(api, settings, user, watcher)
    w = await api.connect(watcher)
    await subscribe(w, user.user_id, marker.user_id)
    return user, marker, w


async def neighbour(api: Api, settings: Settings, of: Login, watcher: Login) -> Login:
    """A new friend of `watcher` whose presence is in the same partition as `of`'s."""
    partitions = settings.presence_partitions
    while True:
        device = await api.new_device("nb")
        if key_partition(device.user_id, partitions) == key_partition(of.user_id, partitions):
            await api.make_friends(watcher, device)
            return device


async def seen_leaving(api: Api, device: Login, w: Session) -> None:
    """The device connects and closes (its user's last sighting is now), and `w`, which
    watches its user, sees them go offline one timeout later."""
    socket = await api.connect(device)
    await wait_status(w, device.user_id, "online")
    await socket.close()
    await wait_status(w, device.user_id, "offline", timeout=TIMEOUT_S + 10)


async def wait_status(
    socket: Session, user_id: str, status: str, timeout: float = 15
) -> dict[str, Any]:
    return await socket.until(
        lambda f: f["type"] == "presence" and f["user_id"] == user_id and f["status"] == status,
        timeout,
    )


async def wait_all(socket: Session, user_ids: list[str], status: str, timeout: float = 15) -> None:
    """Until the latest presence frame of each user has this status, whatever their order."""

    def reached(_: object = None) -> bool:
        return all(presence_of(socket, u)[-1:] == [status] for u in user_ids)

    if not reached():
        await socket.until(reached, timeout)


async def subscribe(socket: Session, *user_ids: str) -> list[dict[str, Any]]:
    await socket.subscribe_presence(user_ids)
    return [await socket.until(lambda f: f["type"] in ("presence", "error")) for _ in user_ids]


async def test_a_friend_request_is_pending_until_accepted_and_either_side_may_end_it(
    api: Api,
) -> None:
    a, b, c = await api.new_device("fa"), await api.new_device("fb"), await api.new_device("fc")
    assert await api.befriend(a, b.user_id) == {"user_id": b.user_id, "status": "requested"}
    assert (await api.befriend(a, b.user_id))["status"] == "requested"
    mine, theirs = await api.friends(a), await api.friends(b)
    assert [(f["user_id"], f["status"]) for f in mine] == [(b.user_id, "requested")]
    assert [(f["user_id"], f["status"], f["username"]) for f in theirs] == [
        (a.user_id, "pending", a.username)
    ]
    assert "presence" not in mine[0]
    assert (await api.befriend(b, a.user_id))["status"] == "friend"
    assert await api.friends(a) == [
        {
            "user_id": b.user_id,
            "username": b.username,
            "display_name": None,
            "status": "friend",
            "presence": {"status": "offline", "last_active_at": None},
        }
    ]
    # Decline: c asks a, a declines; and unfriend: a removes b (twice: still fine).
    await api.befriend(c, a.user_id)
    await api.unfriend(a, c.user_id)
    assert await api.friends(c) == []
    await api.unfriend(a, b.user_id)
    await api.unfriend(a, b.user_id)
    assert await api.friends(a) == []
    for call in (api.befriend, api.unfriend):
        with pytest.raises(ApiError) as unknown:
            await call(a, "4242")
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")
        with pytest.raises(ApiError) as myself:
            await call(a, a.user_id)
        assert (myself.value.status, myself.value.code) == (422, "invalid")
    assert (await api.request("GET", "/v1/friends")).status_code == 401


async def test_two_users_asking_each_other_at_once_become_friends(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    results = await asyncio.gather(api.befriend(a, b.user_id), api.befriend(b, a.user_id))
    assert sorted(r["status"] for r in results) == ["friend", "requested"]
    assert (await api.friends(a))[0]["status"] == "friend"


async def test_only_friends_may_watch_presence_not_those_who_share_a_channel(api: Api) -> None:
    me, friend, mate, stranger = [await api.new_device() for _ in range(4)]
    await api.make_friends(me, friend)
    await api.group(me, [mate.user_id])
    await api.direct(stranger, me.user_id)  # anyone can open a direct channel with anyone
    ok = await api.presence(me, [friend.user_id])
    assert [p["user_id"] for p in ok] == [friend.user_id]
    for other in (mate, stranger):
        with pytest.raises(ApiError) as refused:
            await api.presence(me, [friend.user_id, other.user_id])
        assert (refused.value.status, refused.value.code, refused.value.message) == (
            403,
            "not_member",
            "you may watch only your friends",
        )
        with pytest.raises(ApiError):
            await api.presence(other, [me.user_id])
    for user_ids in ([], [str(i) for i in range(1, 502)]):
        with pytest.raises(ApiError) as invalid:
            await api.presence(me, user_ids)
        assert (invalid.value.status, invalid.value.code) == (422, "invalid")

    socket = await api.connect(me)
    for other in (stranger, mate):
        [frame] = await subscribe(socket, other.user_id)
        assert frame["type"] == "error" and frame["code"] == "not_member"
        assert presence_of(socket, other.user_id) == []
    snapshot = await subscribe(socket, friend.user_id)
    assert [(f["user_id"], f["status"]) for f in snapshot] == [(friend.user_id, "offline")]


async def test_a_subscription_ends_with_the_friendship_or_a_block(
    api: Api, settings: Settings, gateway: Process
) -> None:
    me, friend, blocker = [await api.new_device() for _ in range(3)]
    await api.make_friends(me, friend)
    await api.make_friends(me, blocker)
    # Still watched, each logging out after the one it shares a partition with.
    after_friend = await neighbour(api, settings, friend, me)
    after_blocker = await neighbour(api, settings, blocker, me)
    w = await api.connect(me)
    watched = (friend, blocker, after_friend, after_blocker)
    await subscribe(w, *(d.user_id for d in watched))
    sockets = [await api.connect(d) for d in watched]
    await wait_all(w, [d.user_id for d in watched], "online")

    # The friend ends the friendship; the other blocks the watcher.
    dropped = "parley_gateway_presence_subscriptions_dropped_total"
    before = await metric(gateway.url, dropped)
    await api.unfriend(friend, me.user_id)
    await api.block(blocker, me.user_id)
    # Each end of a right publishes `presence.access_changed`, and the watcher's gateway then
    # checks its subscriptions again in a task of its own; it counts what it drops.

    async def both_dropped() -> bool:
        return await metric(gateway.url, dropped) >= before + 2

    await eventually(both_dropped, 30, "both subscriptions to be dropped")
    for socket in sockets:
        await socket.close()
    for device in watched:  # logging out takes each offline at once, in this order
        await api.log_out(device)
    # The users still watched are seen logging out; their neighbours' logouts, decided
    # after theirs in the same partitions, would have arrived after the dropped ones'.
    await wait_all(w, [after_friend.user_id, after_blocker.user_id], "offline")
    assert presence_of(w, friend.user_id) == ["offline", "online"]
    assert presence_of(w, blocker.user_id) == ["offline", "online"]


async def test_online_while_any_device_heartbeats_offline_after_the_timeout(
    api: Api, settings: Settings
) -> None:
    watcher, user = await api.new_device(), await api.new_device()
    second = await api.add_device(user.username, "second device")
    await api.make_friends(watcher, user)
    marker = await neighbour(api, settings, user, watcher)
    w = await api.connect(watcher)
    assert [f["status"] for f in await subscribe(w, user.user_id, marker.user_id)] == [
        "offline",
        "offline",
    ]

    one = await api.connect(user)
    async with one.heartbeating(BEAT_S):
        online = await wait_status(w, user.user_id, "online")
        assert online["last_active_at"].endswith("Z")
        two = await api.connect(second)
        async with two.heartbeating(BEAT_S):
            await one.close()
            # The closed device's liveness runs out one timeout after its close; the
            # neighbour's, which starts later, after it...
            await seen_leaving(api, marker, w)
            # ...but the other device heartbeats.
            assert presence_of(w, user.user_id) == ["offline", "online"]
            silent_from = time.time()
    offline = await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 10)
    assert presence_of(w, user.user_id) == ["offline", "online", "offline"]
    [seen] = await api.presence(watcher, [user.user_id])
    assert seen["status"] == "offline"
    assert seen["last_active_at"] == offline["last_active_at"]
    assert offline["last_active_at"] <= time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(silent_from + 1)
    )


async def test_logout_of_the_last_device_is_offline_at_once(api: Api, settings: Settings) -> None:
    user, marker, w = await watching(api, settings)
    socket = await api.connect(user)
    async with socket.heartbeating(BEAT_S):
        await wait_status(w, user.user_id, "online")
        # The neighbour is last seen just before the logout, so it times out before the
        # user could: the user's offline comes first only if the logout itself caused it.
        leaving = await api.connect(marker)
        await wait_status(w, marker.user_id, "online")
        await leaving.close()
        await api.log_out(user)
        await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 10)
        assert presence_of(w, marker.user_id) == ["offline", "online"]
    await wait_status(w, marker.user_id, "offline", timeout=TIMEOUT_S + 10)


async def test_a_quick_reconnect_causes_no_flap(
    api: Api, settings: Settings, stores: Stores
) -> None:
    user, marker, w = await watching(api, settings)
    first = await api.connect(user)
    async with first.heartbeating(BEAT_S):
        await wait_status(w, user.user_id, "online")
    await first.close()  # like a tunnel: the socket is gone for a moment...
    await wait_connected(stores, user.user_id, False)  # ...long enough to be recorded gone
    again = await api.connect(user)
    async with again.heartbeating(BEAT_S):
        await seen_leaving(api, marker, w)  # a timeout after the close, and more
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
    await api.make_friends(watcher, user)
    w = await api.connect(watcher, url=second_gateway.ws_url)
    await subscribe(w, user.user_id)
    socket = await api.connect(user)
    async with socket.heartbeating(BEAT_S):
        await wait_status(w, user.user_id, "online")
    await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 10)


async def test_processor_sigkill_keeps_presence_and_timeouts_still_fire(
    api: Api, stack: Stack, settings: Settings
) -> None:
    user, marker, w = await watching(api, settings)
    socket = await api.connect(user)
    async with socket.heartbeating(BEAT_S):
        online = await wait_status(w, user.user_id, "online")
        processor = next(
            p for p in stack.processes if p.role == "processor" and p.popen.poll() is None
        )
        await asyncio.to_thread(processor.kill)
        await asyncio.to_thread(stack.start_processor)
        # A neighbour seen after the restart times out a timeout later; a restart that
        # flipped the user offline would have shown by then.
        await seen_leaving(api, marker, w)
        assert presence_of(w, user.user_id) == ["offline", "online"]
    # The restarted processor still times out a user who goes silent, with last seen kept.
    offline = await wait_status(w, user.user_id, "offline", timeout=TIMEOUT_S + 15)
    assert offline["last_active_at"] >= online["last_active_at"]


async def test_several_changes_of_one_user_in_one_batch_are_saved_as_the_last(
    api: Api, stores: Stores
) -> None:
    """A connect and a close (or an online and an offline) in one processor batch."""
    user = await api.new_device()
    await stores.presence.save(
        [
            (Presence(user.user_id, "online", 1_000, connected=True), 0),
            (Presence(user.user_id, "online", 2_000, connected=False), 0),
        ]
    )
    assert (await stores.presence.get([user.user_id]))[user.user_id] == Presence(
        user.user_id, "online", 2_000, connected=False
    )
