"""Group roles: the creator owns the group; owners and admins manage members; anyone may leave;
nobody removes an owner but themself, and a group always keeps an owner (SPEC §2)."""

from __future__ import annotations

from typing import Any

import pytest

from parley_client import ApiError
from tests.conftest import Api


async def refused(call: Any, status: int, code: str) -> None:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value


async def roles(api: Api, device: Any, channel: str) -> dict[str, str]:
    found = {c["channel_id"]: c for c in await api.channels(device)}
    return dict(found[channel]["roles"])


async def test_only_owners_and_admins_manage_members_and_anyone_may_leave(api: Api) -> None:
    owner, admin, member, other, newcomer = [await api.new_device("gr") for _ in range(5)]
    group = await api.group(owner, [admin.user_id, member.user_id, other.user_id])
    assert await roles(api, member, group) == {owner.user_id: "owner"}

    # A plain member adds and removes no one.
    await refused(api.add_member(member, group, newcomer.user_id), 403, "forbidden")
    await refused(api.remove_member(member, group, other.user_id), 403, "forbidden")
    await refused(api.set_role(member, group, member.user_id, "admin"), 403, "forbidden")

    await api.set_role(owner, group, admin.user_id, "admin")
    assert await roles(api, member, group) == {owner.user_id: "owner", admin.user_id: "admin"}
    # An admin adds and removes members, but not the owner, and gives no role but admin.
    await api.add_member(admin, group, newcomer.user_id)
    await api.remove_member(admin, group, newcomer.user_id)
    await refused(api.remove_member(admin, group, owner.user_id), 403, "forbidden")
    await refused(api.set_role(admin, group, member.user_id, "owner"), 403, "forbidden")
    # Anyone leaves.
    await api.remove_member(other, group, other.user_id)
    found = {c["channel_id"]: c for c in await api.channels(owner)}
    assert sorted(found[group]["members"]) == sorted([owner.user_id, admin.user_id, member.user_id])
    # Only an owner removes an admin.
    await api.add_member(owner, group, other.user_id)
    await api.set_role(owner, group, other.user_id, "admin")
    await refused(api.remove_member(admin, group, other.user_id), 403, "forbidden")
    await api.remove_member(owner, group, other.user_id)


async def test_a_group_keeps_an_owner_when_its_owner_steps_down_or_leaves(api: Api) -> None:
    owner, admin, member = [await api.new_device("go") for _ in range(3)]
    group = await api.group(owner, [admin.user_id, member.user_id])
    await refused(api.set_role(owner, group, owner.user_id, "member"), 422, "last_owner")
    await api.set_role(owner, group, admin.user_id, "admin")
    # The last owner leaves: the longest-standing admin owns the group now.
    await api.remove_member(owner, group, owner.user_id)
    assert await roles(api, member, group) == {admin.user_id: "owner"}
    # Handing over explicitly, then stepping down, leaves the other owner.
    await api.set_role(admin, group, member.user_id, "owner")
    await api.set_role(admin, group, admin.user_id, "member")
    assert await roles(api, member, group) == {member.user_id: "owner"}
    await refused(api.set_role(member, group, "12345", "admin"), 404, "not_found")
    await refused(api.set_role(member, group, admin.user_id, "king"), 422, "invalid")
