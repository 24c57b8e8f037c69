"""Read state across blocks and removals (SPEC §2, §7): in a direct channel with a block
between its two members, neither is shown the other's read marker or typing, and each may
still delete their own earlier messages; a member who was removed from a group, or left it,
moves no read marker or cursor there, and types there no more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from parley_client import ApiError, Frame, Session
from schemas.events import TypingV1
from schemas.ids import now_ms
from schemas.settings import Settings
from storage.protocols import MarkerMove
from storage.stores import Stores
from tests.conftest import Api, sent
from topics.definitions import signals_topic


async def refused(call: Any, status: int, code: str) -> None:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value


def read_state(channel_id: str) -> Callable[[Frame], bool]:
    """A `read`, `receipts` or `typing` frame of the channel."""
    kinds = ("read", "receipts", "typing")
    return lambda f: f["type"] in kinds and f.get("channel_id") == channel_id


async def answered(socket: Session, frame: dict[str, Any], code: str) -> None:
    """Send a frame; the next error frame on the socket carries `code`."""
    await socket.send_frame(frame)
    refusal = await socket.until(lambda f: f["type"] == "error")
    assert refusal["code"] == code, (frame, refusal)


async def test_a_block_stops_receipts_and_typing_between_the_pair_either_way(
    api: Api, settings: Settings
) -> None:
    blocker, pest = await api.new_device("pb"), await api.new_device("pb")
    dm = await api.direct(pest, blocker.user_id)
    a, b = await api.connect(blocker), await api.connect(pest)
    ids = await sent(b, dm, ["one", "two", "three"])
    await a.collect_messages(dm, 3)
    # Before the block, each is shown how far the other read.
    await b.read(dm, ids[0])
    receipts = await a.until(lambda f: f["type"] == "receipts" and f["channel_id"] == dm)
    assert receipts["reads"] == [{"user_id": pest.user_id, "message_id": ids[0]}]
    await b.until(lambda f: f["type"] == "receipts" and f["channel_id"] == dm)  # its own

    await api.block(blocker, pest.user_id)
    await answered(b, {"type": "typing", "channel_id": dm}, "not_member")
    # Typing relayed after the block, as from a gateway that had not heard of it yet.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        late = TypingV1(channel_id=dm, user_id=pest.user_id, at_ms=now_ms())
        await producer.send_and_wait(signals_topic(settings).name, late.encode(), key=dm.encode())
    finally:
        await producer.stop()

    # Each still reads, and its own devices follow; the other is told nothing. The barrier:
    # the pest's own `read` is relayed after the typing (the channel's signals are one
    # partition, relayed in order); the blocker's own `read` after that, and it reaches the
    # blocker after anything that move or the typing sent it.
    await b.read(dm, ids[1])
    assert await b.until(read_state(dm)) == {"type": "read", "channel_id": dm, "message_id": ids[1]}
    await a.read(dm, ids[2])
    assert await a.until(read_state(dm)) == {"type": "read", "channel_id": dm, "message_id": ids[2]}
    await b.read(dm, ids[2])
    assert await b.until(read_state(dm)) == {"type": "read", "channel_id": dm, "message_id": ids[2]}
    # Nor does either see the other's marker on asking.
    assert await api.receipts(blocker, dm) == [{"user_id": blocker.user_id, "message_id": ids[2]}]
    assert await api.receipts(pest, dm) == [{"user_id": pest.user_id, "message_id": ids[2]}]

    # Lifted: receipts are shared again.
    await api.unblock(blocker, pest.user_id)
    assert {r["user_id"] for r in await api.receipts(blocker, dm)} == {
        blocker.user_id,
        pest.user_id,
    }


async def test_across_a_block_each_still_deletes_their_own_messages(api: Api) -> None:
    blocker, pest = await api.new_device("pd"), await api.new_device("pd")
    dm = await api.direct(pest, blocker.user_id)
    a, b = await api.connect(blocker), await api.connect(pest)
    blockers = await sent(a, dm, ["the blocker's", "the blocker's, kept"])
    await b.collect_messages(dm, 2)
    pests = await sent(b, dm, ["the pest's", "the pest's, kept"])
    await a.collect_messages(dm, 4)
    await api.block(blocker, pest.user_id)

    for socket, own in ((a, blockers[0]), (b, pests[0])):
        await socket.accepted(await socket.delete(dm, own))
    for socket in (a, b):  # stored, and delivered to both
        for target in (blockers[0], pests[0]):
            await socket.until(lambda f, t=target: f["type"] == "delete" and f["target_id"] == t)
    history = {m["message_id"]: m for m in await api.history(blocker, dm)}
    shown = [(history[i]["text"], history[i].get("deleted")) for i in (*blockers, *pests)]
    assert shown == [
        ("", True),
        ("the blocker's, kept", None),
        ("", True),
        ("the pest's, kept", None),
    ]

    # No new words either way: an edit (new text before the other) and a reaction are
    # refused as a send is; nor may either delete what the other sent.
    for socket, own, theirs in ((a, blockers[1], pests[1]), (b, pests[1], blockers[1])):
        change = {"channel_id": dm, "message_id": own}
        await answered(
            socket, {"type": "edit", "client_msg_id": "e", **change, "text": "x"}, "not_member"
        )
        await answered(
            socket, {"type": "react", "client_msg_id": "r", **change, "emoji": "+"}, "not_member"
        )
        await answered(
            socket,
            {"type": "delete", "client_msg_id": "d", "channel_id": dm, "message_id": theirs},
            "forbidden",
        )


async def test_a_removed_or_departed_member_moves_no_marker_or_cursor_and_types_no_more(
    api: Api, stores: Stores
) -> None:
    owner, removed, departed = [await api.new_device("pr") for _ in range(3)]
    group = await api.group(owner, [removed.user_id, departed.user_id])
    o = await api.connect(owner)
    r, d = await api.connect(removed), await api.connect(departed)  # synced as members
    ids = await sent(o, group, ["one", "two"])
    await r.collect_messages(group, 2)
    await d.collect_messages(group, 2)
    await api.remove_member(owner, group, removed.user_id)
    await api.remove_member(departed, group, departed.user_id)

    for socket, user in ((r, removed), (d, departed)):
        for frame in (
            {"type": "read", "channel_id": group, "message_id": ids[1]},
            {"type": "ack", "channel_id": group, "message_id": ids[1]},
            {"type": "typing", "channel_id": group},
        ):
            await answered(socket, frame, "not_member")
        assert group not in await stores.reads.markers(user.user_id)
        await refused(api.receipts(user, group), 403, "not_member")


async def test_a_marker_or_cursor_is_stored_only_for_a_member(api: Api, stores: Stores) -> None:
    """Whatever a gateway believed when it took the frame (its membership cache may lag a
    removal made elsewhere), the store writes a marker or a cursor only for a member."""
    owner, removed = await api.new_device("ps"), await api.new_device("ps")
    group = await api.group(owner, [removed.user_id])
    o = await api.connect(owner)
    (first,) = await sent(o, group, ["one"])
    await api.remove_member(owner, group, removed.user_id)

    assert await stores.reads.advance(removed.user_id, group, int(first)) is None
    assert group not in await stores.reads.markers(removed.user_id)
    await stores.cursors.advance(removed.device_id, group, int(first))
    assert group not in await stores.cursors.cursors(removed.device_id)
    # A member's are.
    moved = await stores.reads.advance(owner.user_id, group, int(first))
    assert moved == MarkerMove(moved=True, shared=True)
    await stores.cursors.advance(owner.device_id, group, int(first))
    assert (await stores.cursors.cursors(owner.device_id))[group] == int(first)
