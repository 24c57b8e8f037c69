"""Group adds under abuse: who may add a user to groups (everyone, friends, nobody), a rate
limit on adds, and a channel list that costs the same few statements however many channels a
user is in."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.commands.channels import list_channels
from parley_client import ApiError, Login, Session
from schemas.settings import Settings
from storage.postgres.accounts import PostgresAccountStore
from storage.postgres.channels import PostgresChannelStore
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.reads import PostgresReadStore
from storage.protocols import Device
from tests.conftest import Api, extra_gateway
from tests.stack import Stack


async def refused(call: Any, status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value
    return error.value


async def channel_ids(api: Api, device: Login) -> list[str]:
    return [c["channel_id"] for c in await api.channels(device)]


# --- who may add a user to groups -------------------------------------------------------------


async def test_by_default_only_friends_add_a_user_to_groups_and_a_refusal_makes_nothing(
    api: Api,
) -> None:
    owner = await api.new_device("ga")
    friend, stranger = [await api.new_device("ga", group_adds=None) for _ in range(2)]
    await api.make_friends(owner, friend)
    assert await api.settings(stranger) == {"read_receipts": True, "group_adds": "friends"}

    # Creation with a member who does not allow it: the whole request is refused.
    refusal = await refused(
        api.create_group(owner, "g", [friend.user_id, stranger.user_id]), 403, "not_allowed"
    )
    assert refusal.message == (
        f"not added, by their choice: user {stranger.user_id}:"
        " only their friends may add them to groups"
    )
    for device in (owner, friend, stranger):
        assert await channel_ids(api, device) == []  # no half-made group
    # Added later: refused the same way.
    group = await api.group(owner, [friend.user_id])
    await refused(api.add_member(owner, group, stranger.user_id), 403, "not_allowed")
    assert await channel_ids(api, stranger) == []
    # A friend request is not a friendship; once it is accepted, the add goes through.
    assert (await api.befriend(owner, stranger.user_id))["status"] == "requested"
    await refused(api.add_member(owner, group, stranger.user_id), 403, "not_allowed")
    assert (await api.befriend(stranger, owner.user_id))["status"] == "friend"
    await api.add_member(owner, group, stranger.user_id)
    assert await channel_ids(api, stranger) == [group]
    # The friendship is asked about at each add: ended, no new group with them.
    await api.unfriend(stranger, owner.user_id)
    await refused(api.create_group(owner, "again", [stranger.user_id]), 403, "not_allowed")
    # Friends of one's friends are strangers too: the admin who adds must be the friend.
    admin = await api.new_device("ga")
    await api.add_member(owner, group, admin.user_id)
    await api.set_role(owner, group, admin.user_id, "admin")
    newcomer = await api.new_device("ga", group_adds=None)
    await api.make_friends(owner, newcomer)
    await refused(api.add_member(admin, group, newcomer.user_id), 403, "not_allowed")
    await api.add_member(owner, group, newcomer.user_id)


async def test_nobody_refuses_even_friends_and_everyone_lets_strangers_add(api: Api) -> None:
    owner, stranger = await api.new_device("gn"), await api.new_device("gn")
    private, open_ = [await api.new_device("gn", group_adds=None) for _ in range(2)]
    await api.make_friends(owner, private)
    await api.allow_group_adds(private, "nobody")
    await api.allow_group_adds(open_, "everyone")
    assert await api.settings(private) == {"read_receipts": True, "group_adds": "nobody"}

    refusal = await refused(
        api.create_group(owner, "g", [open_.user_id, private.user_id]), 403, "not_allowed"
    )
    assert refusal.message == (
        f"not added, by their choice: user {private.user_id}: nobody may add them to groups"
    )
    assert await channel_ids(api, open_) == []
    group = await api.group(stranger, [open_.user_id])  # anyone adds a user open to it
    await refused(api.add_member(stranger, group, private.user_id), 403, "not_allowed")
    # Several refusals are named in one answer, by user id.
    friends_only = await api.new_device("gn", group_adds=None)
    refusal = await refused(
        api.create_group(stranger, "g", [private.user_id, friends_only.user_id]),
        403,
        "not_allowed",
    )
    for user in (private, friends_only):
        assert f"user {user.user_id}: " in refusal.message
    # A block still wins over `everyone`, and is named as such.
    await api.block(open_, stranger.user_id)
    await refused(api.create_group(stranger, "g", [open_.user_id]), 403, "blocked")
    # Back to friends: the friend adds again, strangers do not.
    await api.allow_group_adds(private, "friends")
    await api.group(owner, [private.user_id])
    await refused(api.create_group(stranger, "g", [private.user_id]), 403, "not_allowed")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"group_adds": "all"},
        {"group_adds": "Everyone"},
        {"group_adds": None},
        {"group_adds": 1},
        {"group_adds": ["everyone"]},
        {"group_adds": "friends", "extra": 1},
        {"read_receipts": "yes", "group_adds": "everyone"},
        {"read_receipts": None},
        [],
        "everyone",
    ],
)
async def test_the_setting_takes_exactly_its_three_values(api: Api, body: Any) -> None:
    me = await api.new_device("gs", group_adds=None)
    response = await api.request("PUT", "/v1/settings", auth=me, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
    if isinstance(body, dict):  # a body that is no object is refused as such
        assert response.json()["error"]["message"].startswith('the body must hold "read_')
    # Nothing of a refused body is applied.
    assert await api.settings(me) == {"read_receipts": True, "group_adds": "friends"}


async def test_each_setting_changes_alone_and_the_answer_is_every_setting(api: Api) -> None:
    me = await api.new_device("gs", group_adds=None)
    changed = await api.request("PUT", "/v1/settings", auth=me, json={"group_adds": "nobody"})
    assert changed.json() == {"read_receipts": True, "group_adds": "nobody"}
    changed = await api.request("PUT", "/v1/settings", auth=me, json={"read_receipts": False})
    assert changed.json() == {"read_receipts": False, "group_adds": "nobody"}
    both = {"read_receipts": True, "group_adds": "everyone"}
    changed = await api.request("PUT", "/v1/settings", auth=me, json=both)
    assert changed.json() == both
    assert await api.settings(me) == both


# --- the rate of adds -------------------------------------------------------------------------


async def test_adds_past_the_burst_are_rate_limited_per_adder_refusals_included(
    stack: Stack,
) -> None:
    limits = {"PARLEY_GROUP_ADD_BURST": "3", "PARLEY_GROUP_ADD_RATE_PER_S": "0.01"}
    async with extra_gateway(stack, **limits) as gateway, Api(gateway.url) as api:
        adder, other = await api.new_device("gr"), await api.new_device("gr")
        a, b, c, d = [await api.new_device("gr") for _ in range(4)]
        group = await api.group(adder, [a.user_id, b.user_id])  # two tokens
        await api.add_member(adder, group, c.user_id)  # the third
        limited = await refused(api.add_member(adder, group, d.user_id), 429, "rate_limited")
        assert limited.retry_after_s is not None and 1 <= limited.retry_after_s <= 100
        response = await api.request(
            "POST", f"/v1/channels/{group}/members", auth=adder, json={"user_id": d.user_id}
        )
        assert response.status_code == 429 and 1 <= int(response.headers["retry-after"]) <= 100
        await refused(api.create_group(adder, "more", [d.user_id]), 429, "rate_limited")
        assert await channel_ids(api, d) == []  # nothing was made
        # Another adder's share is their own.
        await api.group(other, [d.user_id])

        # A refused add costs its token too: nobody probes others' choices for free.
        prober = await api.new_device("gr")
        private = await api.new_device("gr", group_adds="nobody")
        group = await api.group(prober, [a.user_id])
        for _ in range(2):
            await refused(api.add_member(prober, group, private.user_id), 403, "not_allowed")
        await refused(api.add_member(prober, group, b.user_id), 429, "rate_limited")

        # A group of more members than the bucket holds takes the whole bucket, once.
        big = await api.new_device("gr")
        await api.group(big, [a.user_id, b.user_id, c.user_id, d.user_id])
        await refused(api.create_group(big, "next", [a.user_id]), 429, "rate_limited")


# --- the channel list -------------------------------------------------------------------------


class CountingCursor(psycopg.AsyncCursor[tuple[object, ...]]):
    """Counts the statements its connections send (every store call goes through a cursor)."""

    statements = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        type(self).statements += 1
        return await super().execute(*args, **kwargs)


async def sent(socket: Session, channel_id: str, count: int) -> list[str]:
    """Send `count` messages and wait for their echoes (they are stored by then): their ids."""
    cmids = [await socket.send_message(channel_id, f"message {n}") for n in range(count)]
    for cmid in cmids:
        await socket.accepted(cmid)
    while True:
        echoed = {m["client_msg_id"]: m["message_id"] for m in socket.messages(channel_id)}
        if all(c in echoed for c in cmids):
            return [echoed[c] for c in cmids]
        await socket.collect_messages(channel_id, len(socket.messages(channel_id)) + 1)


async def statements_of_channel_list(settings: Settings, device: Device) -> tuple[int, int]:
    """The statements one `GET /v1/channels` of `device` sends to Postgres (the command run
    here, on stores of this test's own whose cursors count), and the channels it lists."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.postgres_dsn,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "cursor_factory": CountingCursor},
        open=False,
    )
    await pool.open(wait=True)
    try:
        stores = SimpleNamespace(
            channels=PostgresChannelStore(pool),
            messages=PostgresMessageStore(pool),
            reads=PostgresReadStore(pool),
        )
        before = CountingCursor.statements
        found = await list_channels(SimpleNamespace(stores=stores), device)  # type: ignore[arg-type]
        return CountingCursor.statements - before, len(found)
    finally:
        await pool.close()


async def device_of(settings: Settings, login: Login) -> Device:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(settings.postgres_dsn, open=False)
    await pool.open(wait=True)
    try:
        device = await PostgresAccountStore(pool).live_device(login.device_id)
    finally:
        await pool.close()
    assert device is not None
    return device


async def test_the_channel_list_costs_the_same_statements_for_3_channels_as_for_40(
    api: Api, settings: Settings
) -> None:
    me, pal = await api.new_device("cl"), await api.new_device("cl")
    await api.make_friends(me, pal)
    caller = await device_of(settings, me)
    socket = await api.connect(pal)
    groups = [await api.group(me, [pal.user_id], name=f"g{n}") for n in range(40)]
    for group in groups[:3]:
        await sent(socket, group, 1)  # unread: each is counted
    few, listed = await statements_of_channel_list(settings, caller)
    assert listed == 40
    for group in groups[3:]:
        await sent(socket, group, 1)
    many, listed = await statements_of_channel_list(settings, caller)
    assert listed == 40
    assert many == few <= 6, (few, many)


async def test_the_channel_list_is_exact_for_a_user_in_many_channels(api: Api) -> None:
    """Last message, read marker and unread count of each of 31 channels: none sent, some
    read, some with the reader's own messages, one beyond the cap of 100."""
    me, pal = await api.new_device("ce"), await api.new_device("ce")
    await api.make_friends(me, pal)
    dm = await api.direct(me, pal.user_id)
    groups = [await api.group(me, [pal.user_id], name=f"g{n}") for n in range(30)]
    theirs, mine = await api.connect(pal), await api.connect(me)
    expected: dict[str, dict[str, Any]] = {}
    for n, channel in enumerate([dm, *groups]):
        from_pal = await sent(theirs, channel, 102 if n == 0 else n % 4)
        from_me = await sent(mine, channel, 1) if n % 5 == 1 else []
        ids = from_pal + from_me
        read = from_pal[0] if n % 3 == 2 and from_pal else None
        if read is not None:
            await mine.read(channel, read)
            await mine.until(lambda f, c=channel: f["type"] == "read" and f["channel_id"] == c)
        unread = len(from_pal) - (1 if read is not None else 0)
        expected[channel] = {
            "last_message_id": max(ids, key=int) if ids else None,
            "read_message_id": read,
            "unread_count": min(unread, 100),
        }
    listed = {
        c["channel_id"]: {k: c[k] for k in ("last_message_id", "read_message_id", "unread_count")}
        for c in await api.channels(me)
    }
    assert listed == expected
    assert expected[dm]["unread_count"] == 100  # 102 unread, counted up to the cap
