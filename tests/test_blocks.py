"""Blocks: a blocked user cannot open a direct channel with, message, add to a group, befriend
or see the presence of the blocker; blocking ends their friendship (SPEC §2)."""

from __future__ import annotations

from typing import Any

import pytest

from parley_client import ApiError
from tests.conftest import Api


async def refused(call: Any, status: int, code: str) -> None:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value


async def test_a_block_stops_direct_messages_group_adds_friendship_and_presence(api: Api) -> None:
    blocker, pest, bystander = [await api.new_device("bk") for _ in range(3)]
    await api.make_friends(blocker, pest)
    dm = await api.direct(pest, blocker.user_id)
    pest_socket = await api.connect(pest)
    await pest_socket.accepted(await pest_socket.send_message(dm, "before the block"))

    await api.block(blocker, pest.user_id)
    await api.block(blocker, pest.user_id)  # idempotent
    assert await api.blocks(blocker) == [pest.user_id]
    assert await api.friends(blocker) == []  # the friendship ended

    # Either way round: no direct channel, no message in the old one, no friendship.
    await refused(api.open_direct(pest, blocker.user_id), 403, "blocked")
    await refused(api.open_direct(blocker, pest.user_id), 403, "blocked")
    cmid = await pest_socket.send_message(dm, "after the block")
    refusal = await pest_socket.until(lambda f: f["type"] == "error" and f.get("ref") == cmid)
    assert refusal["code"] == "not_member"
    await refused(api.befriend(pest, blocker.user_id), 403, "blocked")
    await refused(api.presence(pest, [blocker.user_id]), 403, "not_member")
    # No group with the blocker from the one blocked.
    await refused(api.create_group(pest, "g", [blocker.user_id, bystander.user_id]), 403, "blocked")
    group = await api.group(pest, [bystander.user_id])
    await refused(api.add_member(pest, group, blocker.user_id), 403, "blocked")
    # The history before the block stays; nothing after it was stored.
    assert [m["text"] for m in await api.history(blocker, dm)] == ["before the block"]

    # Lifted: a direct message goes through again; a friendship must be asked for anew.
    await api.unblock(blocker, pest.user_id)
    assert await api.blocks(blocker) == []
    await pest_socket.accepted(await pest_socket.send_message(dm, "after the unblock"))
    assert (await api.befriend(pest, blocker.user_id))["status"] == "requested"


async def test_blocking_needs_a_real_other_user(api: Api) -> None:
    me = await api.new_device("bk2")
    await refused(api.block(me, me.user_id), 422, "invalid")
    await refused(api.block(me, "12345"), 404, "not_found")
    response = await api.request("PUT", "/v1/blocks/abc", auth=me)
    assert response.status_code == 422


async def test_a_hidden_direct_channel_leaves_the_list_until_a_new_message(api: Api) -> None:
    me, other = await api.new_device("hd"), await api.new_device("hd")
    dm = await api.direct(other, me.user_id)
    socket = await api.connect(other)
    await socket.send_message(dm, "first")
    await socket.collect_messages(dm, 1)
    await api.remove_member(me, dm, me.user_id)  # in a direct channel: hide it
    assert [c["channel_id"] for c in await api.channels(me)] == []
    assert [c["channel_id"] for c in await api.channels(other)] == [dm]  # only mine is hidden
    assert [m["text"] for m in await api.history(me, dm)] == ["first"]  # still a member
    await socket.send_message(dm, "second")
    await socket.collect_messages(dm, 2)  # its echo: stored
    assert [c["channel_id"] for c in await api.channels(me)] == [dm]


async def test_a_user_is_found_by_username_unless_a_block_stands_between(api: Api) -> None:
    me, other = await api.new_device("fu"), await api.new_device("fu")
    found = await api.find_user(me, other.username)
    assert found == {"user_id": other.user_id, "username": other.username, "display_name": None}
    await refused(api.find_user(me, "nobody_by_this_name"), 404, "not_found")
    await refused(api.find_user(me, "Not A Name"), 422, "invalid")
    await api.block(other, me.user_id)
    await refused(api.find_user(me, other.username), 404, "not_found")
    await refused(api.find_user(other, me.username), 404, "not_found")
