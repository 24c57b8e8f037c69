"""Invite links to groups: who makes, sees and revokes them, what a holder sees and may join,
and the limits a join respects (expiry, uses, the member cap, blocks, the rate of lookups)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parley_client import ApiError, Login
from storage.stores import Stores
from tests.conftest import Api, extra_gateway, sent
from tests.stack import Stack


async def refused(call: Any, status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value
    return error.value


async def channel_ids(api: Api, device: Login) -> list[str]:
    return [c["channel_id"] for c in await api.channels(device)]


async def test_only_owners_and_admins_make_see_and_revoke_links_and_codes_are_shown_once(
    api: Api,
) -> None:
    owner, admin, member, outsider = [await api.new_device("iv") for _ in range(4)]
    group = await api.group(owner, [admin.user_id, member.user_id], name="Book club")
    await api.set_role(owner, group, admin.user_id, "admin")

    made = await api.create_invite(admin, group, expires_in_s=3600, max_uses=5)
    code = made["code"]
    assert len(code) == 24 and made["code_prefix"] == code[:6]
    assert (made["channel_id"], made["created_by"]) == (group, admin.user_id)
    assert (made["max_uses"], made["uses"], made["usable"]) == (5, 0, True)
    assert made["expires_at"] is not None
    other = await api.create_invite(owner, group)
    assert other["code"] != code and other["expires_at"] is None and other["max_uses"] is None

    listed = await api.invites(owner, group)
    assert [i["invite_id"] for i in listed] == [made["invite_id"], other["invite_id"]]
    assert all("code" not in i for i in listed)  # only its hash is kept
    assert await api.invites(admin, group) == listed

    # A plain member, a non-member and a direct channel: no links.
    for call in (
        api.create_invite(member, group),
        api.invites(member, group),
        api.revoke_invite(member, group, made["invite_id"]),
    ):
        await refused(call, 403, "forbidden")
    for call in (
        api.create_invite(outsider, group),
        api.invites(outsider, group),
        api.revoke_invite(outsider, group, made["invite_id"]),
    ):
        await refused(call, 403, "not_member")
    direct = await api.direct(owner, member.user_id)
    await refused(api.create_invite(owner, direct), 422, "invalid")
    await refused(api.create_invite(member, direct), 422, "invalid")

    # Revoked: it stops working at once, and is gone from the list.
    await api.revoke_invite(owner, group, made["invite_id"])
    await refused(api.revoke_invite(owner, group, made["invite_id"]), 404, "not_found")
    await refused(api.preview_invite(outsider, code), 404, "not_found")
    await refused(api.join_by_invite(outsider, code), 404, "not_found")
    assert [i["invite_id"] for i in await api.invites(owner, group)] == [other["invite_id"]]
    assert await channel_ids(api, outsider) == []


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_s": 59},
        {"expires_in_s": 30 * 24 * 3600 + 1},
        {"expires_in_s": "3600"},
        {"expires_in_s": 1.5},
        {"max_uses": 0},
        {"max_uses": 1001},
        {"max_uses": True},
        {"uses": 3},
        [],
    ],
)
async def test_a_link_takes_an_expiry_and_a_use_count_in_range(api: Api, body: Any) -> None:
    owner, member = await api.new_device("iv"), await api.new_device("iv")
    group = await api.group(owner, [member.user_id])
    response = await api.request("POST", f"/v1/channels/{group}/invites", auth=owner, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
    assert await api.invites(owner, group) == []


async def test_a_holder_sees_the_group_and_joins_it_as_if_added(api: Api) -> None:
    owner, member = await api.new_device("iv"), await api.new_device("iv")
    # The joiner lets nobody add them: joining by a link is their own act, not an add.
    joiner = await api.new_device("iv", group_adds="nobody")
    group = await api.group(owner, [member.user_id], name="Hikers")
    await api.set_history_visible(owner, group, False)
    owner_socket = await api.connect(owner)
    await sent(owner_socket, group, ["before the join"])
    code = (await api.create_invite(owner, group, max_uses=2))["code"]

    preview = await api.preview_invite(joiner, code)
    assert preview == {
        "channel_id": group,
        "name": "Hikers",
        "member_count": 2,
        "member": False,
        "expires_at": None,
    }
    # Looking is not joining.
    await refused(api.history(joiner, group), 403, "not_member")

    joined = await api.join_by_invite(joiner, code)
    assert joined["channel_id"] == group and joiner.user_id in joined["members"]
    assert joined["roles"] == {owner.user_id: "owner"}  # a plain member
    assert await channel_ids(api, joiner) == [group]
    assert (await api.preview_invite(joiner, code))["member"] is True
    # As an add: the group's setting hides what came before; what comes after reaches them live.
    assert await api.history(joiner, group) == []
    joiner_socket = await api.connect(joiner)
    await sent(owner_socket, group, ["after the join"])
    arrived = await joiner_socket.collect_messages(group, 1)
    assert [m["text"] for m in arrived] == ["after the join"]
    await joiner_socket.send_message(group, "hello all")
    await owner_socket.until(lambda f: f["type"] == "message" and f["text"] == "hello all")

    # Joining again changes nothing and uses nothing.
    assert (await api.join_by_invite(joiner, code))["members"] == joined["members"]
    (listed,) = await api.invites(owner, group)
    assert listed["uses"] == 1

    # A member who left, or was removed, comes back only with a usable link.
    await api.remove_member(owner, group, joiner.user_id)
    await refused(api.history(joiner, group), 403, "not_member")
    await api.join_by_invite(joiner, code)
    (listed,) = await api.invites(owner, group)
    assert (listed["uses"], listed["usable"]) == (2, False)
    await api.remove_member(joiner, group, joiner.user_id)
    await refused(api.join_by_invite(joiner, code), 404, "not_found")  # used up
    await refused(api.preview_invite(joiner, code), 404, "not_found")
    assert await channel_ids(api, joiner) == []


async def test_a_one_use_link_admits_exactly_one_of_two_joiners_at_once(api: Api) -> None:
    owner, member = await api.new_device("iv"), await api.new_device("iv")
    group = await api.group(owner, [member.user_id])
    for _ in range(3):
        code = (await api.create_invite(owner, group, max_uses=1))["code"]
        a, b = await api.new_device("iv"), await api.new_device("iv")
        results = await asyncio.gather(
            api.join_by_invite(a, code), api.join_by_invite(b, code), return_exceptions=True
        )
        joined = [r for r in results if isinstance(r, dict)]
        errors = [r for r in results if isinstance(r, ApiError)]
        assert len(joined) == 1 and len(errors) == 1, results
        assert (errors[0].status, errors[0].code) == (404, "not_found")
        members = (await api.channels(owner))[0]["members"]
        assert (a.user_id in members) != (b.user_id in members)
    assert all(i["uses"] == 1 and not i["usable"] for i in await api.invites(owner, group))


async def test_a_link_expires_and_dies_with_its_makers_role(api: Api, stores: Stores) -> None:
    owner, admin, joiner = [await api.new_device("iv") for _ in range(3)]
    group = await api.group(owner, [admin.user_id])
    await api.set_role(owner, group, admin.user_id, "admin")
    made = await api.create_invite(owner, group, expires_in_s=60)
    # An hour passes (the link's expiry moved into the past, as the clock would).
    async with stores.pool.connection() as conn:
        await conn.execute(
            "UPDATE channel_invites SET expires_at = now() - interval '1 second'"
            " WHERE invite_id = %s",
            (made["invite_id"],),
        )
    await refused(api.preview_invite(joiner, made["code"]), 404, "not_found")
    await refused(api.join_by_invite(joiner, made["code"]), 404, "not_found")
    assert [i["usable"] for i in await api.invites(owner, group)] == [False]

    # An admin's links work while they manage the group, and stop when they no longer do.
    code = (await api.create_invite(admin, group))["code"]
    await api.set_role(owner, group, admin.user_id, "member")
    await refused(api.preview_invite(joiner, code), 404, "not_found")
    await refused(api.join_by_invite(joiner, code), 404, "not_found")
    await refused(api.invites(admin, group), 403, "forbidden")  # no longer theirs to manage
    await api.set_role(owner, group, admin.user_id, "admin")
    assert (await api.join_by_invite(joiner, code))["channel_id"] == group

    # Removed, an admin manages nothing, and their links stop working.
    other = (await api.create_invite(admin, group))["code"]
    await api.remove_member(owner, group, admin.user_id)
    for call in (
        api.invites(admin, group),
        api.create_invite(admin, group),
        api.revoke_invite(admin, group, made["invite_id"]),
    ):
        await refused(call, 403, "not_member")
    await refused(api.preview_invite(await api.new_device("iv"), other), 404, "not_found")


async def test_a_block_with_an_owner_or_admin_refuses_the_join_and_a_members_does_not(
    api: Api,
) -> None:
    owner, admin, member = [await api.new_device("iv") for _ in range(3)]
    group = await api.group(owner, [admin.user_id, member.user_id])
    await api.set_role(owner, group, admin.user_id, "admin")
    code = (await api.create_invite(admin, group))["code"]

    blocked_by_owner, blocking_admin, blocked_by_member = [
        await api.new_device("iv") for _ in range(3)
    ]
    await api.block(owner, blocked_by_owner.user_id)  # not the link's maker: refused all the same
    await api.block(blocking_admin, admin.user_id)  # either way round
    await api.block(member, blocked_by_member.user_id)
    for joiner in (blocked_by_owner, blocking_admin):
        await refused(api.join_by_invite(joiner, code), 403, "blocked")
        assert await channel_ids(api, joiner) == []
    # A plain member's block does not keep others out of the group (as with an add).
    await api.join_by_invite(blocked_by_member, code)
    # Lifted, the join goes through.
    await api.unblock(owner, blocked_by_owner.user_id)
    await api.join_by_invite(blocked_by_owner, code)
    members = (await api.channels(owner))[0]["members"]
    assert {blocked_by_owner.user_id, blocked_by_member.user_id} <= set(members)


async def test_joining_by_link_respects_the_member_cap(api: Api) -> None:
    devices = await asyncio.gather(*(api.new_device("ic") for _ in range(101)))
    owner, last = devices[0], devices[100]
    group = await api.group(owner, [d.user_id for d in devices[1:99]])  # 99 members
    code = (await api.create_invite(owner, group))["code"]
    await api.join_by_invite(devices[99], code)  # the 100th
    assert (await api.preview_invite(last, code))["member_count"] == 100
    await refused(api.join_by_invite(last, code), 422, "group_full")
    assert await channel_ids(api, last) == []
    (listed,) = await api.invites(owner, group)
    assert listed["uses"] == 1  # a refused join uses nothing


async def test_a_group_has_a_bounded_number_of_usable_links(api: Api) -> None:
    owner, member = await api.new_device("iv"), await api.new_device("iv")
    group = await api.group(owner, [member.user_id])
    made = [await api.create_invite(owner, group, max_uses=1) for _ in range(50)]
    await refused(api.create_invite(owner, group), 422, "too_many_invites")
    # A link used up is forgotten when the next is made: room again.
    await api.join_by_invite(await api.new_device("iv"), made[0]["code"])
    await api.create_invite(owner, group)
    assert len(await api.invites(owner, group)) == 50


async def test_looking_up_and_using_links_is_rate_limited_per_user_bad_codes_included(
    stack: Stack,
) -> None:
    limits = {"PARLEY_INVITE_BURST": "4", "PARLEY_INVITE_RATE_PER_S": "0.01"}
    async with extra_gateway(stack, **limits) as gateway, Api(gateway.url) as api:
        owner, member, guesser = [await api.new_device("ir") for _ in range(3)]
        group = await api.group(owner, [member.user_id])
        code = (await api.create_invite(owner, group))["code"]
        for guess in ("A" * 24, "short", "B" * 24):
            await refused(api.preview_invite(guesser, guess), 404, "not_found")
        await refused(api.join_by_invite(guesser, "C" * 24), 404, "not_found")
        limited = await refused(api.join_by_invite(guesser, code), 429, "rate_limited")
        assert limited.retry_after_s is not None and 1 <= limited.retry_after_s <= 100
        await refused(api.preview_invite(guesser, code), 429, "rate_limited")
        assert await channel_ids(api, guesser) == []
        # Another user's share is their own.
        joiner = await api.new_device("ir")
        assert (await api.join_by_invite(joiner, code))["channel_id"] == group
