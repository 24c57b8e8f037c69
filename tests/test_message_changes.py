"""Edits, deletes and reactions (SPEC §7): changes with their own ids in the channel's order,
live on every device, in the sync of a device that was away, and in history as the latest
state; only the sender edits, the sender or a group's owner/admin deletes."""

from __future__ import annotations

import copy
from typing import Any

from parley_client import Frame, Session
from tests.conftest import Api

TOO_LONG = "x" * 100_001


def apply(state: dict[str, dict[str, Any]], frame: Frame) -> None:
    """A client's view of a channel: a message frame sets a message, a change changes it (as
    docs/protocol.md tells clients to)."""
    if frame["type"] == "message":
        state[frame["message_id"]] = {
            k: v for k, v in frame.items() if k not in ("type", "client_msg_id")
        }
        return
    target = state.get(frame["target_id"])
    if target is None or target.get("deleted"):
        return
    if frame["type"] == "edit":
        target.update(text=frame["text"], edited_at=frame["sent_at"])
    elif frame["type"] == "delete":
        for field in ("edited_at", "reactions"):
            target.pop(field, None)
        target.update(text="", deleted=True)
    elif frame["type"] == "reaction":
        reactions = target.setdefault("reactions", {})
        users = set(reactions.get(frame["emoji"], ()))
        users.discard(frame["sender_id"]) if frame["removed"] else users.add(frame["sender_id"])
        reactions[frame["emoji"]] = sorted(users)
        if not users:
            del reactions[frame["emoji"]]
        if not reactions:
            del target["reactions"]


def view(frames: list[Frame], channel_id: str) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("channel_id") == channel_id and frame["type"] in (
            "message",
            "edit",
            "delete",
            "reaction",
        ):
            apply(state, frame)
    return state


async def history_view(api: Api, device: Any, channel_id: str) -> dict[str, dict[str, Any]]:
    return {
        m["message_id"]: {k: v for k, v in m.items() if k != "client_msg_id"}
        for m in await api.all_history(device, channel_id)
    }


async def echoed(socket: Session, cmids: set[str]) -> None:
    """Until the socket has received the change of each of these client_msg_ids."""
    changes = ("edit", "delete", "reaction")
    missing = cmids - {f["client_msg_id"] for f in socket.frames or [] if f["type"] in changes}
    while missing:
        frame = await socket.next()
        if frame["type"] in changes:
            missing.discard(frame["client_msg_id"])


async def refused(socket: Session, cmid: str) -> str:
    frame = await socket.until(lambda f: f["type"] == "error" and f.get("ref") == cmid)
    return str(frame["code"])


async def test_changes_reach_every_device_live_and_in_sync_and_history_shows_the_result(
    api: Api,
) -> None:
    owner, member = await api.new_device("ce"), await api.new_device("ce")
    member_laptop = await api.add_device(member.username)
    group = await api.group(owner, [member.user_id])
    o, m = await api.connect(owner), await api.connect(member)
    away = await api.connect(member_laptop)
    for text in ("one", "two", "three"):
        await o.accepted(await o.send_message(group, text))
    one, two, three = [x["message_id"] for x in await away.collect_messages(group, 3)]
    snapshot = copy.deepcopy(away.frames or [])
    cursor = three
    await away.close()  # the laptop is away for everything below

    steps = [
        (o, await o.edit(group, one, "one, edited")),
        (m, await m.react(group, one, "👍")),
        (o, await o.react(group, one, "👍")),
        (m, await m.react(group, one, "👍")),  # twice is once
        (m, await m.react(group, two, "🎉")),
        (o, await o.edit(group, one, "one, edited again")),
        (m, await m.react(group, one, "👍", removed=True)),
        (o, await o.delete(group, two)),
    ]
    for socket, cmid in steps:
        await socket.accepted(cmid)
    for socket in (o, m):  # every change reached both, in whatever order the channel has
        await echoed(socket, {cmid for _, cmid in steps})

    fresh = await history_view(api, owner, group)
    assert fresh[one]["text"] == "one, edited again" and "edited_at" in fresh[one]
    assert fresh[one]["reactions"] == {"👍": [owner.user_id]}
    assert fresh[two] == {**fresh[two], "text": "", "deleted": True}
    assert "reactions" not in fresh[two] and fresh[three]["text"] == "three"
    # Every live device's view is the fresh read.
    for socket in (o, m):
        assert view(socket.frames or [], group) == fresh
    # The away device syncs the changes after its cursor onto its old view: the same.
    back = await api.connect(member_laptop, cursors={group: cursor})  # returns once synced
    assert view(snapshot + (back.frames or []), group) == fresh
    # A device that syncs the whole channel: the same.
    whole = await api.connect(member_laptop, cursors={group: str(int(one) - 1)})
    assert view(whole.frames or [], group) == fresh


async def test_who_may_change_what(api: Api) -> None:
    owner, member, outsider = [await api.new_device("cw") for _ in range(3)]
    group = await api.group(owner, [member.user_id])
    o, m, x = await api.connect(owner), await api.connect(member), await api.connect(outsider)
    await o.accepted(await o.send_message(group, "the owner's"))
    await m.accepted(await m.send_message(group, "the member's"))
    theirs, mine = [f["message_id"] for f in await o.collect_messages(group, 2)]
    o_id = owner.user_id

    assert await refused(m, await m.edit(group, theirs, "not mine")) == "forbidden"
    assert await refused(m, await m.delete(group, theirs)) == "forbidden"  # a plain member
    assert await refused(m, await m.edit(group, mine, TOO_LONG)) == "too_large"
    assert await refused(m, await m.edit(group, str(int(mine) + 1), "no such")) == "not_found"
    assert await refused(m, await m.react(group, mine, "two words")) == "invalid"
    assert await refused(x, await x.edit(group, theirs, "outside")) == "not_member"
    # The owner deletes the member's message; then it can be neither edited nor reacted to.
    await o.accepted(await o.delete(group, mine))
    await m.until(lambda f: f["type"] == "delete")  # stored before it is delivered
    assert await refused(m, await m.edit(group, mine, "again")) == "not_found"
    assert await refused(o, await o.react(group, mine, "👍")) == "not_found"
    await m.accepted(await m.delete(group, mine))  # deleting twice is harmless
    # A member added later touches only what it may see: in a group that hides its past from
    # later members, nothing from before it joined (tests/test_visibility.py has the default).
    await api.set_history_visible(owner, group, False)
    await api.add_member(owner, group, outsider.user_id)
    assert await refused(x, await x.react(group, theirs, "👍")) == "not_found"
    # A change is a row of the channel with its own id, after its message's.
    (deleted,) = [f for f in m.frames or [] if f["type"] == "delete" and f["sender_id"] == o_id]
    assert int(deleted["message_id"]) > int(deleted["target_id"]) == int(mine)
