"""Replies and threads (issue #23): a send may answer a message of its channel (`reply_to`);
the reply shows the quoted sender and the start of the text, a tombstone once the original is
deleted; a message counts its replies (`reply_count`) and `GET …/messages?thread=ID` pages them.
Live, synced and history views converge; only members who may see a message may answer it or
read its thread, and a reply's quote never shows what its reader may not see."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from parley_client import ApiError, Frame
from tests.conftest import Api
from tests.test_message_changes import echoed, history_view, refused

LONG = "a long original, " * 20  # over the 200 characters a quote shows


def apply(state: dict[str, dict[str, Any]], frame: Frame) -> None:
    """A client's view of a channel with replies, as docs/protocol.md tells clients to keep it:
    a reply counts on its message unless its id is not above the message's `last_reply_id`
    (counted already); an edit or delete of a message also changes the quotes of
    its replies; a deleted reply shows no quote."""
    if frame["type"] == "message":
        state[frame["message_id"]] = {
            k: v for k, v in frame.items() if k not in ("type", "client_msg_id")
        }
        original = state.get(frame.get("reply_to", ""))
        last = int((original or {}).get("last_reply_id", 0))
        if original is not None and int(frame["message_id"]) > last:  # not counted yet
            original["reply_count"] = original.get("reply_count", 0) + 1
            original["last_reply_id"] = frame["message_id"]
        return
    target = state.get(frame["target_id"])
    if target is None or target.get("deleted"):
        return
    replies = [m for m in state.values() if m.get("reply_to") == frame["target_id"]]
    if frame["type"] == "edit":
        target.update(text=frame["text"], edited_at=frame["sent_at"])
        for reply in replies:
            if "quote" in reply:
                reply["quote"]["text"] = frame["text"][:200]
    elif frame["type"] == "delete":
        for field in ("edited_at", "reactions", "quote"):
            target.pop(field, None)
        target.update(text="", deleted=True)
        for reply in replies:
            if "quote" in reply:
                reply["quote"] = {**reply["quote"], "text": "", "deleted": True}


def view(frames: list[Frame], channel_id: str) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("channel_id") == channel_id and frame["type"] in ("message", "edit", "delete"):
            apply(state, copy.deepcopy(frame))
    return state


async def test_replies_quote_their_message_and_every_view_converges(api: Api) -> None:
    owner, member = await api.new_device("rp"), await api.new_device("rp")
    laptop = await api.add_device(member.username)
    group = await api.group(owner, [member.user_id])
    o, m = await api.connect(owner), await api.connect(member)
    away = await api.connect(laptop)
    await o.accepted(await o.send_message(group, LONG))
    await o.accepted(await o.send_message(group, "second"))
    first, second = [f["message_id"] for f in await away.collect_messages(group, 2)]
    await m.accepted(await m.send_message(group, "a reply", reply_to=first))
    (reply,) = [f for f in await away.collect_messages(group, 3) if f.get("reply_to")]
    assert reply["reply_to"] == first
    assert reply["quote"] == {"sender_id": owner.user_id, "text": LONG[:200]}
    snapshot = copy.deepcopy(away.frames or [])
    cursor = reply["message_id"]
    await away.close()  # the laptop is away for everything below

    steps = [
        (o, await o.edit(group, first, "first, edited")),
        (o, await o.send_message(group, "the owner answers", reply_to=first)),
        (m, await m.send_message(group, "on the second", reply_to=second)),
        (o, await o.delete(group, first)),
    ]
    for socket, cmid in steps:
        await socket.accepted(cmid)
    for socket in (o, m):
        await echoed(socket, {steps[0][1], steps[3][1]})
    late = await m.send_message(group, "too late", reply_to=first)  # the original is deleted
    assert await refused(m, late) == "not_found"
    for socket in (o, m):
        await socket.collect_messages(group, 5)

    fresh = await history_view(api, owner, group)
    tombstone = {"sender_id": owner.user_id, "text": "", "deleted": True}
    assert fresh[first] == {**fresh[first], "deleted": True, "reply_count": 2, "text": ""}
    assert fresh[second]["reply_count"] == 1
    answers = [m for m in fresh.values() if m.get("reply_to") == first]
    assert [a["quote"] for a in answers] == [tombstone, tombstone]
    # Every live device's view is the fresh read.
    for socket in (o, m):
        assert view(socket.frames or [], group) == fresh
    # The away device syncs what followed its cursor onto its old view: the same.
    back = await api.connect(laptop, cursors={group: cursor})
    assert view(snapshot + (back.frames or []), group) == fresh
    # A device that syncs the whole channel: the same.
    whole = await api.connect(laptop, cursors={group: str(int(first) - 1)})
    assert view(whole.frames or [], group) == fresh

    # The thread of the first message: its replies, in order, paged like history.
    thread = await api.history(owner, group, thread=first)
    assert [t["message_id"] for t in thread] == [reply["message_id"], answers[1]["message_id"]]
    assert thread == [
        {"client_msg_id": t["client_msg_id"], **fresh[t["message_id"]]} for t in thread
    ]
    page = await api.history(owner, group, thread=first, limit=1)
    assert [t["message_id"] for t in page] == [answers[1]["message_id"]]
    older = await api.history(owner, group, thread=first, before=page[0]["message_id"])
    assert [t["message_id"] for t in older] == [reply["message_id"]]
    assert await api.history(owner, group, thread=first, after=page[0]["message_id"]) == []
    assert await api.history(owner, group, thread=reply["message_id"]) == []


async def test_who_may_reply_and_to_what(api: Api) -> None:
    owner, member, outsider = [await api.new_device("rw") for _ in range(3)]
    group = await api.group(owner, [member.user_id])
    other = await api.group(owner, [member.user_id])
    o, m, x = await api.connect(owner), await api.connect(member), await api.connect(outsider)
    await o.accepted(await o.send_message(group, "here"))
    await o.accepted(await o.send_message(other, "elsewhere"))
    (here,) = [f["message_id"] for f in await m.collect_messages(group, 1)]
    (elsewhere,) = [f["message_id"] for f in await m.collect_messages(other, 1)]
    await o.accepted(await o.edit(group, here, "here, edited"))
    edit = (await m.until(lambda f: f["type"] == "edit"))["message_id"]

    assert await refused(m, await m.send_message(group, "r", reply_to=elsewhere)) == "not_found"
    assert await refused(m, await m.send_message(group, "r", reply_to=edit)) == "not_found"
    unknown = str(int(here) + 1_000_000)
    assert await refused(m, await m.send_message(group, "r", reply_to=unknown)) == "not_found"
    assert await refused(x, await x.send_message(group, "r", reply_to=here)) == "not_member"
    await m.send_frame(
        {"type": "send", "client_msg_id": "bad", "channel_id": group, "text": "r", "reply_to": "x"}
    )
    assert await refused(m, "bad") == "invalid"

    # A group that hides its past: a later member may not answer (nor read the thread of) a
    # message from before it joined, and does not see its quote in a reply.
    await api.set_history_visible(owner, group, False)
    await api.add_member(owner, group, outsider.user_id)
    assert await refused(x, await x.send_message(group, "r", reply_to=here)) == "not_found"
    with pytest.raises(ApiError) as hidden:
        await api.history(outsider, group, thread=here)
    assert hidden.value.status == 404
    await m.accepted(await m.send_message(group, "an old answer", reply_to=here))
    late = (await x.collect_messages(group, 1))[0]
    assert late["reply_to"] == here and "quote" not in late
    (mine,) = [f for f in await m.collect_messages(group, 2) if f.get("reply_to") == here]
    assert mine["quote"] == {"sender_id": owner.user_id, "text": "here, edited"}
    (shown,) = await api.history(outsider, group)
    assert shown["message_id"] == late["message_id"] and "quote" not in shown

    # Threads: a member reads them; a removed member and an outsider do not.
    assert len(await api.history(member, group, thread=here)) == 1
    await api.remove_member(owner, group, member.user_id)
    stranger = await api.new_device("rw")
    for who, status in ((member, 403), (stranger, 403)):
        with pytest.raises(ApiError) as refusal:
            await api.history(who, group, thread=here)
        assert refusal.value.status == status
    with pytest.raises(ApiError) as bad:
        await api.history(owner, group, thread="abc")
    assert (bad.value.status, bad.value.message) == (422, "thread must be a message id")
    with pytest.raises(ApiError) as bad:
        await api.history(owner, group, thread=here, around=here)
    assert bad.value.message == "a thread is paged with before or after, not around"
    with pytest.raises(ApiError) as missing:
        await api.history(owner, group, thread=unknown)
    assert missing.value.status == 404

    # Blocked: a direct channel with a block takes no reply either.
    direct = await api.direct(owner, member.user_id)
    await o.accepted(await o.send_message(direct, "before the block"))
    (before,) = [f["message_id"] for f in await m.collect_messages(direct, 1)]
    await api.block(member, owner.user_id)
    assert await refused(o, await o.send_message(direct, "r", reply_to=before)) == "not_member"
