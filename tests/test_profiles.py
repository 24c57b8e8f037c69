"""Profiles (docs/protocol.md, Profiles): a user's username and display name by id, one or a
batch, for the caller's own account, group co-members, friends and requests, and direct
contacts, never across a block outside a shared group; and setting one's display name."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from parley_client import ApiError
from tests.conftest import Api


async def refused(call: Any, status: int, code: str) -> None:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value


def card(login: Any, display_name: str | None = None) -> dict[str, Any]:
    return {"user_id": login.user_id, "username": login.username, "display_name": display_name}


async def test_co_members_friends_and_contacts_see_names_strangers_do_not(api: Api) -> None:
    me, member, friend, asker, contact, stranger = [await api.new_device("pf") for _ in range(6)]
    await api.group(me, [member.user_id])
    await api.make_friends(me, friend)
    await api.befriend(asker, me.user_id)  # a request, not yet answered
    await api.direct(contact, me.user_id)

    assert await api.set_display_name(member, "Ada Lovelace") == card(member, "Ada Lovelace")
    assert await api.user(me, member.user_id) == card(member, "Ada Lovelace")
    assert await api.user(member, me.user_id) == card(me)
    for other in (friend, asker, contact):
        assert await api.user(me, other.user_id) == card(other)
        assert await api.user(other, me.user_id) == card(me)
    assert await api.user(me, me.user_id) == card(me)
    assert (await api.request("GET", "/v1/users/me", auth=me)).json() == card(me)
    # A stranger is not told whether the id is an account.
    await refused(api.user(me, stranger.user_id), 404, "not_found")
    await refused(api.user(stranger, me.user_id), 404, "not_found")
    await refused(api.user(me, "12345"), 404, "not_found")

    # The batch: in the order asked, repeats once, the ones not visible left out.
    ids = [stranger.user_id, friend.user_id, member.user_id, friend.user_id, "12345"]
    assert await api.users(me, ids) == [card(friend), card(member, "Ada Lovelace")]


async def test_a_block_hides_a_profile_except_from_a_shared_group(api: Api) -> None:
    me, pest, grouped = [await api.new_device("pb") for _ in range(3)]
    await api.make_friends(me, pest)
    await api.direct(pest, me.user_id)
    await api.group(me, [grouped.user_id])
    await api.block(me, pest.user_id)
    await api.block(grouped, me.user_id)
    await refused(api.user(pest, me.user_id), 404, "not_found")
    await refused(api.user(me, pest.user_id), 404, "not_found")
    # Group co-members see each other's messages, so each other's names too.
    assert await api.user(me, grouped.user_id) == card(grouped)
    assert await api.user(grouped, me.user_id) == card(me)


async def test_a_removed_member_no_longer_sees_the_group(api: Api) -> None:
    owner, leaver = await api.new_device("pr"), await api.new_device("pr")
    group = await api.group(owner, [leaver.user_id])
    assert await api.user(leaver, owner.user_id) == card(owner)
    await api.remove_member(owner, group, leaver.user_id)
    await refused(api.user(leaver, owner.user_id), 404, "not_found")


async def test_a_display_name_is_checked_and_stored_nfc(api: Api) -> None:
    me = await api.new_device("pn")
    decomposed = "Zoe\u0301"  # e + combining acute
    changed = await api.set_display_name(me, decomposed)
    assert changed["display_name"] == unicodedata.normalize("NFC", decomposed) == "Zo\u00e9"
    assert await api.set_display_name(me, "x" * 64) == card(me, "x" * 64)
    assert await api.set_display_name(me, None) == card(me)
    for bad in ("", "   ", "x" * 65, "a\x00b", "a\nb", "a\x85", "ab\u202e", 7):
        await refused(api.set_display_name(me, bad), 422, "invalid")  # type: ignore[arg-type]
    for body in ({}, {"display_name": "ok", "username": "root"}, ["display_name"]):
        response = await api.request("PATCH", "/v1/users/me", auth=me, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid")
    assert await api.user(me, me.user_id) == card(me)  # nothing refused was stored
    # Sign-up takes the same names.
    response = await api.request(
        "POST",
        "/v1/users",
        json={"username": me.username + "x", "password": "x" * 8, "display_name": "ab\u202e"},
    )
    assert response.status_code == 422


async def test_the_batch_is_bounded_and_strict(api: Api) -> None:
    me = await api.new_device("pq")
    hundred = ",".join(str(10**6 + i) for i in range(100))
    assert (await api.request("GET", f"/v1/users?ids={hundred}", auth=me)).json() == {"users": []}
    for query in (
        "ids=" + hundred + ",1",
        "ids=" + "1," * 150,
        "ids=",
        "ids=1,,2",
        "ids=1,abc",
        "ids=01",
        "ids=99999999999999999999",
        f"ids={me.user_id}&username={me.username}",
    ):
        response = await api.request("GET", f"/v1/users?{query}", auth=me)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid"), query
    assert (await api.request("GET", "/v1/users/abc", auth=me)).status_code == 422
    assert (await api.request("GET", f"/v1/users/{me.user_id}")).status_code == 401
    assert (await api.request("GET", f"/v1/users?ids={me.user_id}")).status_code == 401
    assert (
        await api.request("PATCH", "/v1/users/me", json={"display_name": "x"})
    ).status_code == 401
