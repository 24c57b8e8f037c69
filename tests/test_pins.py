"""Pinned messages (issue #23): a pin and an unpin are changes with their own ids in the
channel's order, live on every device, in the sync of a device that was away, and in history
(`pinned_by`, `pinned_at`) and `GET /v1/channels/{id}/pins`; a delete unpins. In a group only
owners and admins pin, in a direct channel either member; a channel holds at most 50 pins,
judged by the gateway from the store and by the pipeline in the channel's order."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from parley_client import ApiError, Frame, Session
from schemas.limits import MAX_PINS_PER_CHANNEL
from tests.conftest import Api
from tests.test_message_changes import history_view, refused
from tests.test_reaction_limits import outcomes

CHANGES = ("edit", "delete", "reaction", "pin", "unpin")


def apply(state: dict[str, dict[str, Any]], frame: Frame) -> None:
    """A client's view of a channel with pins, as docs/protocol.md tells clients to keep it."""
    if frame["type"] == "message":
        state[frame["message_id"]] = {
            k: v for k, v in frame.items() if k not in ("type", "client_msg_id")
        }
        return
    target = state.get(frame["target_id"])
    if target is None or target.get("deleted"):
        return
    if frame["type"] == "delete":
        for field in ("edited_at", "reactions", "pinned_by", "pinned_at"):
            target.pop(field, None)
        target.update(text="", deleted=True)
    elif frame["type"] == "pin" and "refused" not in frame:
        target.update(pinned_by=frame["sender_id"], pinned_at=frame["sent_at"])
    elif frame["type"] == "unpin":
        target.pop("pinned_by", None)
        target.pop("pinned_at", None)


def view(frames: list[Frame], channel_id: str) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("channel_id") == channel_id and frame["type"] in ("message", *CHANGES):
            apply(state, frame)
    return state


async def echoed(socket: Session, cmids: set[str]) -> None:
    """Until the socket has received the change of each of these client_msg_ids."""
    missing = cmids - {f["client_msg_id"] for f in socket.frames or [] if f["type"] in CHANGES}
    while missing:
        frame = await socket.next()
        if frame["type"] in CHANGES:
            missing.discard(frame["client_msg_id"])


async def test_pins_reach_every_device_live_and_in_sync_and_history_and_the_pins_agree(
    api: Api,
) -> None:
    owner, member = await api.new_device("pn"), await api.new_device("pn")
    laptop = await api.add_device(member.username)
    group = await api.group(owner, [member.user_id])
    o, m = await api.connect(owner), await api.connect(member)
    away = await api.connect(laptop)
    for text in ("one", "two", "three"):
        await o.accepted(await o.send_message(group, text))
    one, two, three = [x["message_id"] for x in await away.collect_messages(group, 3)]
    snapshot = copy.deepcopy(away.frames or [])
    await away.close()  # the laptop is away for everything below

    steps = [
        await o.pin(group, one),
        await o.pin(group, two),
        await o.pin(group, three),
        await o.pin(group, one, unpin=True),
        await o.pin(group, two),  # pinned again: the newest pin
        await o.delete(group, three),  # a delete unpins
    ]
    for cmid in steps:
        await o.accepted(cmid)
    for socket in (o, m):
        await echoed(socket, set(steps))

    fresh = await history_view(api, owner, group)
    assert "pinned_by" not in fresh[one] and "pinned_by" not in fresh[three]
    assert fresh[two]["pinned_by"] == owner.user_id
    pins = await api.pins(member, group)
    assert [p["message_id"] for p in pins] == [two]
    assert {k: v for k, v in pins[0].items() if k != "client_msg_id"} == fresh[two]
    for socket in (o, m):
        assert view(socket.frames or [], group) == fresh
    back = await api.connect(laptop, cursors={group: three})
    assert view(snapshot + (back.frames or []), group) == fresh
    whole = await api.connect(laptop, cursors={group: str(int(one) - 1)})
    assert view(whole.frames or [], group) == fresh


async def test_who_may_pin_what(api: Api) -> None:
    owner, admin, member, outsider = [await api.new_device("pw") for _ in range(4)]
    group = await api.group(owner, [admin.user_id, member.user_id])
    await api.set_role(owner, group, admin.user_id, "admin")
    o, a, m = [await api.connect(d) for d in (owner, admin, member)]
    x = await api.connect(outsider)
    await m.accepted(await m.send_message(group, "the member's"))
    (message,) = [f["message_id"] for f in await o.collect_messages(group, 1)]

    assert await refused(m, await m.pin(group, message)) == "forbidden"  # a plain member
    assert await refused(x, await x.pin(group, message)) == "not_member"
    assert await refused(a, await a.pin(group, str(int(message) + 1))) == "not_found"
    await a.accepted(await a.pin(group, message))  # an admin
    assert await refused(m, await m.pin(group, message, unpin=True)) == "forbidden"
    await m.until(lambda f: f["type"] == "pin")
    await o.accepted(await o.pin(group, message, unpin=True))  # the owner
    await m.until(lambda f: f["type"] == "unpin")
    assert await api.pins(member, group) == []
    with pytest.raises(ApiError) as stranger:
        await api.pins(outsider, group)
    assert stranger.value.status == 403

    # A member made admin pins at once; one removed neither pins nor lists the pins.
    await api.set_role(owner, group, member.user_id, "admin")
    await m.accepted(await m.pin(group, message))
    await api.remove_member(owner, group, admin.user_id)
    assert await refused(a, await a.pin(group, message, unpin=True)) == "not_member"
    with pytest.raises(ApiError) as removed:
        await api.pins(admin, group)
    assert removed.value.status == 403

    # A later member of a group that hides its past sees no pin from before it joined.
    await api.set_history_visible(owner, group, False)
    await api.add_member(owner, group, outsider.user_id)
    await m.until(lambda f: f["type"] == "pin" and f["sender_id"] == member.user_id)
    assert await api.pins(outsider, group) == []
    assert len(await api.pins(owner, group)) == 1

    # In a direct channel either member pins, until a block.
    direct = await api.direct(owner, member.user_id)
    await o.accepted(await o.send_message(direct, "between us"))
    (ours,) = [f["message_id"] for f in await m.collect_messages(direct, 1)]
    await m.accepted(await m.pin(direct, ours))
    await o.accepted(await o.pin(direct, ours, unpin=True))
    await api.block(member, owner.user_id)
    assert await refused(o, await o.pin(direct, ours)) == "not_member"


async def test_a_channel_takes_at_most_50_pins_however_many_are_sent_at_once(api: Api) -> None:
    owner = await api.new_device("pc")
    other = await api.new_device("pc")
    group = await api.group(owner, [other.user_id])
    o = await api.connect(owner)
    count = MAX_PINS_PER_CHANNEL + 10
    for i in range(count):
        await o.accepted(await o.send_message(group, f"m{i}"))
    ids = [f["message_id"] for f in await o.collect_messages(group, count)]

    # All at once: the gateway sees few stored, the pipeline judges them in order.
    cmids = [await o.pin(group, message_id) for message_id in ids]
    answers = await outcomes(o, cmids)
    accepted = [c for c in cmids if answers[c] == "accepted"]
    assert set(answers.values()) <= {"accepted", "invalid"}
    await echoed(o, set(accepted))
    frames = {f["client_msg_id"]: f for f in o.frames or [] if f["type"] == "pin"}
    pinned = [c for c in accepted if "refused" not in frames[c]]
    assert len(pinned) == MAX_PINS_PER_CHANNEL
    assert all(frames[c]["refused"] == "pin_limit" for c in accepted if c not in pinned)
    pins = await api.pins(owner, group)
    assert {p["message_id"] for p in pins} == {frames[c]["target_id"] for c in pinned}

    # Now the store is full: the gateway refuses a new pin; pinning a pinned one again is fine.
    unpinned = next(i for i in ids if i not in {p["message_id"] for p in pins})
    cmid = await o.pin(group, unpinned)
    assert await refused(o, cmid) == "invalid"
    error = next(f for f in o.frames or [] if f.get("ref") == cmid)
    assert error["message"] == "a channel takes at most 50 pinned messages"
    await o.accepted(await o.pin(group, pins[0]["message_id"]))
    # An unpin makes room.
    await o.accepted(await o.pin(group, pins[0]["message_id"], unpin=True))
    await o.until(lambda f: f["type"] == "unpin")
    await o.accepted(await o.pin(group, unpinned))
