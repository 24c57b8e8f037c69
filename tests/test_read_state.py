"""Read state and typing (SPEC §7): a read marker per user and channel, synced live to every
device of the user; unread counts; read receipts (opt-out); typing, live only and never stored."""

from __future__ import annotations

from typing import Any

import pytest

from parley_client import ApiError, Frame
from tests.conftest import Api, handled, sent

BEYOND_EVERY_ID = str(2**62)


def kind(name: str, channel_id: str) -> Any:
    return lambda f: f["type"] == name and f["channel_id"] == channel_id


async def unread(api: Api, device: Any, channel_id: str) -> tuple[int, str | None]:
    (found,) = [c for c in await api.channels(device) if c["channel_id"] == channel_id]
    return found["unread_count"], found["read_message_id"]


async def test_unread_counts_fall_as_another_device_reads_and_every_device_follows(
    api: Api,
) -> None:
    bob = await api.new_device("rb")
    alice_phone = await api.new_device("ra")
    alice_laptop = await api.add_device(alice_phone.username)
    channel = await api.direct(bob, alice_phone.user_id)
    b = await api.connect(bob)
    phone, laptop = await api.connect(alice_phone), await api.connect(alice_laptop)
    ids = await sent(b, channel, ["one", "two", "three"])
    await phone.collect_messages(channel, 3)

    assert await unread(api, alice_phone, channel) == (3, None)
    assert await unread(api, bob, channel) == (0, None)  # one's own messages are never unread

    await phone.read(channel, ids[1])
    for socket in (laptop, phone):  # every device of the reader follows
        moved = await socket.until(kind("read", channel))
        assert moved == {"type": "read", "channel_id": channel, "message_id": ids[1]}
    assert await unread(api, alice_laptop, channel) == (1, ids[1])

    # Never backwards: an older read changes nothing and tells no one (the next move the
    # laptop hears of is the one after it).
    await laptop.read(channel, ids[0])
    await handled(laptop)
    assert await unread(api, alice_laptop, channel) == (1, ids[1])
    # Never past the newest message: a future message is not born read.
    await laptop.read(channel, BEYOND_EVERY_ID)
    moved = await phone.until(lambda f: f["type"] == "read" and f["message_id"] != ids[1])
    assert moved["message_id"] == ids[2]
    assert await unread(api, alice_phone, channel) == (0, ids[2])
    await sent(b, channel, ["four"])
    assert (await unread(api, alice_phone, channel))[0] == 1


async def test_read_and_typing_need_membership(api: Api) -> None:
    owner, member, outsider = [await api.new_device("rm") for _ in range(3)]
    group = await api.group(owner, [member.user_id])
    o = await api.connect(owner)
    ids = await sent(o, group, ["hello"])
    s = await api.connect(outsider)
    for frame in (
        {"type": "read", "channel_id": group, "message_id": ids[0]},
        {"type": "typing", "channel_id": group},
    ):
        await s.send_frame(frame)
        refusal = await s.until(lambda f: f["type"] == "error")
        assert refusal["code"] == "not_member", refusal
    with pytest.raises(ApiError) as error:
        await api.receipts(outsider, group)
    assert (error.value.status, error.value.code) == (403, "not_member")
    response = await api.request("PUT", "/v1/settings", auth=outsider, json={"read_receipts": 1})
    assert response.status_code == 422


async def test_receipts_show_how_far_members_read_unless_they_turn_them_off(api: Api) -> None:
    owner, reader, private = [await api.new_device("rr") for _ in range(3)]
    group = await api.group(owner, [reader.user_id, private.user_id])
    o = await api.connect(owner)
    r, p = await api.connect(reader), await api.connect(private)
    await api.share_receipts(private, False)
    assert (await api.settings(private))["read_receipts"] is False
    ids = await sent(o, group, ["first", "second"])

    await r.read(group, ids[0])
    receipts = await o.until(kind("receipts", group))
    assert receipts["reads"] == [{"user_id": reader.user_id, "message_id": ids[0]}]
    # The private reader's own devices follow its marker; the others are not told.
    await p.read(group, ids[1])
    await p.until(kind("read", group))
    await r.read(group, ids[1])
    receipts = await o.until(kind("receipts", group))
    assert receipts["reads"] == [{"user_id": reader.user_id, "message_id": ids[1]}]
    assert await api.receipts(owner, group) == [{"user_id": reader.user_id, "message_id": ids[1]}]
    assert await unread(api, private, group) == (0, ids[1])  # its own marker still counts

    await api.share_receipts(private, True)
    assert {x["user_id"] for x in await api.receipts(reader, group)} == {
        reader.user_id,
        private.user_id,
    }


async def test_typing_reaches_the_other_members_online_expires_and_is_never_caught_up_on(
    api: Api,
) -> None:
    typist, watcher, late = [await api.new_device("rt") for _ in range(3)]
    typist_laptop = await api.add_device(typist.username)
    group = await api.group(typist, [watcher.user_id, late.user_id])
    t, w = await api.connect(typist), await api.connect(watcher)
    laptop = await api.connect(typist_laptop)

    await t.typing(group)
    await t.typing(group)  # a repeat within two seconds: not relayed
    await handled(t)
    shown = await w.until(kind("typing", group))
    assert shown["user_id"] == typist.user_id
    assert 0 < shown["expires_in_ms"] <= 6000

    # A late joiner catches up on none of it, and the repeat never came: the next typing the
    # watcher hears of is the late joiner's own.
    lt = await api.connect(late)
    await lt.typing(group)
    after = await w.until(kind("typing", group))
    assert after["user_id"] == late.user_id
    await w.typing(group)
    first_late: Frame = await lt.until(kind("typing", group))
    assert first_late["user_id"] == watcher.user_id
    # Nor do the typist's own devices hear of its typing.
    first_laptop = await laptop.until(kind("typing", group))
    assert first_laptop["user_id"] == late.user_id
