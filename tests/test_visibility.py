"""Visibility (SPEC §7): one rule decides what a member may see of a group's past. With the
group's "history visible to new members" setting on (the default) a member sees all of it;
off, only what came from the moment they (last) joined. History, sync, search and receipts
apply the same rule, so they show a member exactly the same messages."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from parley_client import Login
from tests.conftest import Api, eventually, sent

BEYOND_EVERY_ID = str(2**62)


async def new_group(api: Api, owner: Login, members: list[Login], **body: Any) -> str:
    response = await api.request(
        "POST",
        "/v1/channels",
        auth=owner,
        json={"type": "group", "name": "g", "member_ids": [m.user_id for m in members], **body},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["channel_id"])


async def change_group(api: Api, who: Login, channel_id: str, body: Any) -> httpx.Response:
    return await api.request("PATCH", f"/v1/channels/{channel_id}", auth=who, json=body)


async def found(api: Api, who: Login, word: str, channel_id: str | None = None) -> list[str]:
    """The ids search finds for `word`, oldest first."""
    params = {"q": word, "limit": "100"}
    if channel_id is not None:
        params["channel_id"] = channel_id
    response = await api.request("GET", "/v1/search", auth=who, params=params)
    assert response.status_code == 200, response.text
    return sorted((r["message"]["message_id"] for r in response.json()["results"]), key=int)


async def until_indexed(api: Api, who: Login, word: str, ids: list[str]) -> None:
    """Until search shows `who` (a member from the start) every one of `ids`."""

    async def indexed() -> bool:
        return set(ids) <= set(await found(api, who, word))

    await eventually(indexed, 30, f"messages with {word} indexed")


async def views(api: Api, who: Login, channel_id: str, word: str) -> dict[str, list[str]]:
    """The message ids `who` is shown by each way of reading the channel (oldest first)."""
    ids = [m["message_id"] for m in await api.all_history(who, channel_id)]
    first = ids[0] if ids else "1"
    pages = {
        "newest page": await api.history(who, channel_id),
        "before page": await api.history(who, channel_id, before=BEYOND_EVERY_ID),
        "around page": await api.history(who, channel_id, around=first, limit=100),
        "after page": await api.history(who, channel_id, after="1"),
    }
    # A client that asks to be synced from the very start of the channel.
    socket = await api.connect(who, cursors={channel_id: "1"})
    synced = [m["message_id"] for m in socket.messages(channel_id)]
    await socket.close()
    return {
        "history": ids,
        **{name: [m["message_id"] for m in page] for name, page in pages.items()},
        "sync": synced,
        "search": await found(api, who, word),
        "search in the channel": await found(api, who, word, channel_id),
    }


async def receipts(api: Api, who: Login, channel_id: str) -> dict[str, str]:
    return {r["user_id"]: r["message_id"] for r in await api.receipts(who, channel_id)}


async def unread(api: Api, who: Login, channel_id: str) -> int:
    (channel,) = [c for c in await api.channels(who) if c["channel_id"] == channel_id]
    return int(channel["unread_count"])


@pytest.mark.parametrize("setting", [{}, {"history_visible": False}], ids=["default", "hidden"])
async def test_history_sync_search_and_receipts_show_a_late_member_the_same_messages(
    api: Api, setting: dict[str, Any]
) -> None:
    owner, member, late = [await api.new_device("vl") for _ in range(3)]
    group = await new_group(api, owner, [member], **setting)
    word = f"seen{uuid.uuid4().hex[:8]}"
    o, m = await api.connect(owner), await api.connect(member)
    older = await sent(o, group, [f"{word} before {i}" for i in range(3)])
    await m.collect_messages(group, 3)
    await m.read(group, older[0])
    await o.until(lambda f: f["type"] == "receipts")

    await api.add_member(owner, group, late.user_id)
    # Nothing new yet: the newest message is one the late member may see, or none.
    (listed,) = [c for c in await api.channels(late) if c["channel_id"] == group]
    assert listed["last_message_id"] == (older[-1] if setting == {} else None)
    newer = await sent(o, group, [f"{word} after {i}" for i in range(2)])
    await until_indexed(api, owner, word, older + newer)

    visible = older + newer if setting == {} else newer
    seen = await views(api, late, group, word)
    assert seen == {way: visible for way in seen}
    # A receipt names a message: only one the member may see.
    expected = {member.user_id: older[0]} if setting == {} else {}
    assert await receipts(api, late, group) == expected
    assert await unread(api, late, group) == len(newer)  # never read: from the join on
    # What the late member may see, it may react to; nothing else.
    lt = await api.connect(late)
    reaction = await lt.react(group, older[1], "👍")
    if setting == {}:
        await lt.accepted(reaction)
    else:
        refusal = await lt.until(lambda f: f["type"] == "error" and f.get("ref") == reaction)
        assert refusal["code"] == "not_found", refusal
    await lt.close()
    # Members from the start see everything either way.
    everything = older + newer
    seen = await views(api, member, group, word)
    assert seen == {way: everything for way in seen}

    # A change to a message is the message's: an edit of an older one (its new text) reaches
    # the late member, live and in the sync, only if it may see that message.
    lt = await api.connect(late)
    await o.accepted(await o.edit(group, older[2], f"{word} edited"))
    marker = await sent(o, group, ["marker"])
    # The marker comes after the edit in the channel's order: by then the edit came, or never.
    await lt.until(lambda f: f["type"] == "message" and f["message_id"] == marker[0])
    edits = [f for f in lt.frames or [] if f["type"] == "edit"]
    assert [e["target_id"] for e in edits] == ([older[2]] if setting == {} else [])
    again = await api.connect(late, cursors={group: newer[-1]})
    synced = [f for f in again.frames or [] if f.get("channel_id") == group]
    kinds = [(f["type"], f.get("target_id")) for f in synced]
    shown = [("reaction", older[1]), ("edit", older[2])] if setting == {} else []
    assert kinds == [*shown, ("message", None)], kinds
    assert synced[-1]["message_id"] == marker[0]


async def test_the_setting_is_read_as_it_is_now_and_only_managers_change_it(api: Api) -> None:
    owner, admin, member, late = [await api.new_device("vs") for _ in range(4)]
    group = await new_group(api, owner, [admin, member], history_visible=False)
    await api.set_role(owner, group, admin.user_id, "admin")
    word = f"now{uuid.uuid4().hex[:8]}"
    o = await api.connect(owner)
    older = await sent(o, group, [f"{word} before"])
    await api.add_member(owner, group, late.user_id)
    newer = await sent(o, group, [f"{word} after"])
    await until_indexed(api, owner, word, older + newer)
    (listed,) = [c for c in await api.channels(late) if c["channel_id"] == group]
    assert listed["history_visible"] is False
    assert (await views(api, late, group, word))["history"] == newer

    # A plain member changes nothing; bad bodies are refused; an admin turns it on.
    refused = await change_group(api, member, group, {"history_visible": True})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    for body in ({}, {"history_visible": 1}, {"history_visible": "true"}, {"history": True}):
        bad = await change_group(api, admin, group, body)
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid"), body
    changed = await change_group(api, admin, group, {"history_visible": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["history_visible"] is True
    # Read as it is now: the late member sees the past everywhere at once...
    seen = await views(api, late, group, word)
    assert seen == {way: older + newer for way in seen}
    (listed,) = [c for c in await api.channels(late) if c["channel_id"] == group]
    assert listed["history_visible"] is True
    # ... and no longer once the owner turns it off again.
    assert (await change_group(api, owner, group, {"history_visible": False})).status_code == 200
    seen = await views(api, late, group, word)
    assert seen == {way: newer for way in seen}

    # An outsider is not a member; a direct channel has no such setting (both see everything).
    outsider = await api.new_device("vx")
    refused = await change_group(api, outsider, group, {"history_visible": True})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_member")
    direct = (await api.open_direct(owner, member.user_id))["channel_id"]
    refused = await change_group(api, owner, direct, {"history_visible": False})
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid")
    (listed,) = [c for c in await api.channels(owner) if c["channel_id"] == direct]
    assert listed["history_visible"] is True


async def test_a_group_is_created_with_a_strict_setting(api: Api) -> None:
    owner, member = await api.new_device("vc"), await api.new_device("vc")
    for value in (0, "false", None, []):
        response = await api.request(
            "POST",
            "/v1/channels",
            auth=owner,
            json={
                "type": "group",
                "name": "g",
                "member_ids": [member.user_id],
                "history_visible": value,
            },
        )
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid"), value
    response = await api.request(
        "POST",
        "/v1/channels",
        auth=owner,
        json={"type": "group", "name": "g", "member_ids": [member.user_id]},
    )
    assert response.json()["history_visible"] is True


async def test_a_member_who_left_and_came_back_sees_from_their_latest_join(api: Api) -> None:
    owner, member = await api.new_device("vr"), await api.new_device("vr")
    group = await new_group(api, owner, [member], history_visible=False)
    word = f"back{uuid.uuid4().hex[:8]}"
    o = await api.connect(owner)
    first = await sent(o, group, [f"{word} first"])
    m = await api.connect(member)
    await m.collect_messages(group, 1)
    # The member's device acknowledged and read the first message, then left.
    await m.ack(group, first[0])
    await m.read(group, first[0])
    await m.until(lambda f: f["type"] == "read")
    await m.close()
    await api.remove_member(member, group, member.user_id)
    missed = await sent(o, group, [f"{word} missed {i}" for i in range(3)])
    await api.add_member(owner, group, member.user_id)
    back = await sent(o, group, [f"{word} back"])
    await until_indexed(api, owner, word, first + missed + back)

    seen = await views(api, member, group, word)
    assert seen == {way: back for way in seen}
    # The device's own cursor (from before it left) syncs nothing from before the return.
    again = await api.connect(member)
    assert [f["message_id"] for f in again.messages(group)] == back
    # Unread: only what the member may see. The read marker from before stays where it was,
    # but names a message the member may no longer see: it reads as none.
    assert await unread(api, member, group) == 1
    (listed,) = [c for c in await api.channels(member) if c["channel_id"] == group]
    assert listed["read_message_id"] is None


async def test_live_receipts_name_only_messages_a_member_may_see(api: Api) -> None:
    owner, reader, late = [await api.new_device("vt") for _ in range(3)]
    group = await new_group(api, owner, [reader], history_visible=False)
    o = await api.connect(owner)
    older = await sent(o, group, ["before"])
    await api.add_member(owner, group, late.user_id)
    newer = await sent(o, group, ["after"])
    lt = await api.connect(late)

    r = await api.connect(reader)
    await r.read(group, older[0])
    told = await o.until(lambda f: f["type"] == "receipts")
    assert told["reads"] == [{"user_id": reader.user_id, "message_id": older[0]}]
    await r.read(group, newer[0])
    told = await o.until(lambda f: f["type"] == "receipts")
    assert told["reads"] == [{"user_id": reader.user_id, "message_id": newer[0]}]
    # The late member hears of the second move only: the first named a message before it joined.
    heard = await lt.until(lambda f: f["type"] == "receipts")
    assert heard["reads"] == [{"user_id": reader.user_id, "message_id": newer[0]}]
