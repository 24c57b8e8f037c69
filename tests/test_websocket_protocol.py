"""The WebSocket protocol (SPEC §3, §4): handshake, every client frame, every error code, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from parley_client import CloseCode, Frame
from schemas.ids import id_unix_ms, iso_ms, now_ms
from tests.conftest import Api, handled
from tests.stack import Process, Stack

PRESENCE_TIMEOUT_S = 4.0  # PARLEY_HEARTBEAT_TIMEOUT_S in tests


async def test_hello_gets_welcome_then_synced(api: Api) -> None:
    device = await api.new_device()
    socket = await api.open()
    await socket.send_hello(device.token)
    assert await socket.next() == {
        "type": "welcome",
        "user_id": device.user_id,
        "device_id": device.device_id,
        "heartbeat_interval_s": 15,
    }
    assert await socket.next() == {"type": "synced"}


@pytest.mark.parametrize(
    "first",
    [
        None,  # say nothing: the hello timeout (1 s in tests) fires
        {"type": "hello", "token": "not-a-token"},
        {"type": "send", "client_msg_id": "x", "channel_id": "1", "text": "hi"},
        "not json",
        {"type": "hello"},
    ],
)
async def test_no_valid_hello_gets_unauthorized_and_close_4001(api: Api, first: object) -> None:
    socket = await api.open()
    if isinstance(first, dict):
        await socket.send_frame(first)
    elif isinstance(first, str):
        await socket.send_raw(first)
    frame = await socket.next()
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    assert await socket.wait_closed() == CloseCode.UNAUTHORIZED


async def test_bad_frames_get_invalid_and_the_socket_stays_open(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    cases: list[tuple[str | bytes, str, str | None]] = [
        ("{not json", "invalid", None),
        ("[1, 2]", "invalid", None),
        ('{"type": "teleport"}', "invalid", None),
        ('{"no_type": 1}', "invalid", None),
        ('{"type": "send", "client_msg_id": "m1", "channel_id": "%s"}' % channel, "invalid", "m1"),
        (
            '{"type": "send", "client_msg_id": "m2", "channel_id": "%s", "text": ""}' % channel,
            "invalid",
            "m2",
        ),
        (
            '{"type": "send", "client_msg_id": "", "channel_id": "%s", "text": "x"}' % channel,
            "invalid",
            None,
        ),
        (
            '{"type": "send", "client_msg_id": "%s", "channel_id": "%s", "text": "x"}'
            % ("c" * 65, channel),
            "invalid",
            "c" * 65,
        ),
        (
            '{"type": "send", "client_msg_id": 7, "channel_id": "%s", "text": "x"}' % channel,
            "invalid",
            None,
        ),
        ('{"type": "ack", "channel_id": "%s", "message_id": "abc"}' % channel, "invalid", None),
        ('{"type": "ack", "channel_id": "%s"}' % channel, "invalid", None),
        ('{"type": "hello", "token": "again"}', "invalid", None),
        (b"\x00\x01binary", "invalid", None),
    ]
    for raw, code, ref in cases:
        await socket.send_raw(raw)
        frame = await socket.next()
        assert frame["type"] == "error" and frame["code"] == code, (raw, frame)
        assert frame.get("ref") == ref, (raw, frame)
        assert frame["message"]
    # Still open and working.
    cmid = await socket.send_message(channel, "still here")
    assert (await socket.accepted(cmid))["channel_id"] == channel


async def test_a_heartbeat_gets_no_reply_and_is_a_sighting_that_keeps_its_user_seen(
    api: Api,
) -> None:
    """A user whose socket stays open but falls silent goes offline one presence timeout
    after their last heartbeat, and is last seen then: had the heartbeat been ignored, they
    would be last seen at their connect."""
    watcher, user = await api.new_device(), await api.new_device()
    await api.make_friends(watcher, user)
    w = await api.connect(watcher)
    await w.subscribe_presence([user.user_id])
    await w.until(lambda f: f["type"] == "presence" and f["status"] == "offline")
    socket = await api.connect(user)
    online = await w.until(lambda f: f["type"] == "presence" and f["status"] == "online")
    heard_from = iso_ms(now_ms())  # after the connect was seen
    await socket.heartbeat()
    refusal = await handled(socket)  # the first frame since: nothing answered the heartbeat
    offline = await w.until(
        lambda f: f["type"] == "presence" and f["status"] == "offline", PRESENCE_TIMEOUT_S + 10
    )
    assert socket.is_open  # it never closed: the timeout ran from its last sighting
    assert online["last_active_at"] < heard_from <= offline["last_active_at"]
    assert socket.errors() == [refusal]


async def test_text_of_100000_multibyte_characters_is_accepted_and_one_more_is_too_large(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    reader = await api.connect(b)
    longest = "é" * 50_000 + "😀" * 50_000  # 100,000 characters, 300,000 bytes of UTF-8
    await socket.send_message(channel, longest + "x", client_msg_id="too-long")
    frame = await socket.next()
    assert frame == {**frame, "type": "error", "code": "too_large", "ref": "too-long"}
    await socket.send_message(channel, longest, client_msg_id="longest")
    got = (await reader.collect_messages(channel, 1))[0]
    assert got["text"] == longest and got["client_msg_id"] == "longest"
    assert [m["client_msg_id"] for m in await api.history(b, channel)] == ["longest"]


async def test_compression_a_browser_offers_is_declined_and_frames_of_every_length_arrive_whole(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    # The client library offers permessage-deflate on every socket, as browsers do.
    reader = await api.connect(b)
    request, response = reader.ws.request, reader.ws.response
    assert request is not None and response is not None
    assert "permessage-deflate" in (request.headers.get("Sec-WebSocket-Extensions") or "")
    assert response.headers.get("Sec-WebSocket-Extensions") is None
    socket = await api.connect(a)
    # Frame lengths on both sides of the 7-bit, 16-bit and 64-bit length encodings.
    texts = ["", "a" * 20, "é" * 100, "b" * 65_400, "😀" * 16_400, "c" * 100_000]
    for i, text in enumerate(texts):
        await socket.send_message(channel, text or "-", client_msg_id=f"len-{i}")
    got = await reader.collect_messages(channel, len(texts))
    assert [m["text"] for m in got] == [t or "-" for t in texts]


async def test_send_and_ack_to_a_channel_one_is_not_in_get_not_member_and_reach_no_one(
    api: Api,
) -> None:
    a, b, outsider = await api.new_device(), await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(outsider)
    reader = await api.connect(b)
    await socket.send_message(channel, "let me in", client_msg_id="nope")
    frame = await socket.next()
    assert frame == {**frame, "type": "error", "code": "not_member", "ref": "nope"}
    await socket.send_message("12345", "nowhere", client_msg_id="nope2")
    assert (await socket.next())["code"] == "not_member"
    await socket.ack(channel, "1")
    assert (await socket.next())["code"] == "not_member"
    # A member's send after the refused one is the first and only message the member sees.
    await reader.send_message(channel, "members only", client_msg_id="member")
    assert [m["client_msg_id"] for m in await reader.collect_messages(channel, 1)] == ["member"]
    assert [m["client_msg_id"] for m in await api.history(b, channel)] == ["member"]


async def test_removed_member_can_no_longer_send(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.group(a, [b.user_id])
    socket = await api.connect(b)
    await socket.send_message(channel, "in")
    await socket.collect_messages(channel, 1)  # stored and delivered
    await api.remove_member(a, channel, b.user_id)
    await socket.send_message(channel, "out", client_msg_id="after-removal")
    refused = await socket.until(lambda f: f["type"] == "error" and f.get("ref") == "after-removal")
    assert refused["code"] == "not_member"
    assert [m["text"] for m in await api.history(a, channel)] == ["in"]


async def test_ack_moves_the_cursor_forward_only_and_sync_starts_after_it(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    sender = await api.connect(a)
    for i in range(5):
        await sender.send_message(channel, f"c{i}")
    got = await sender.collect_messages(channel, 5)
    reader = await api.connect(b)
    assert [m["text"] for m in reader.messages(channel)] == [f"c{i}" for i in range(5)]
    await reader.ack(channel, got[3]["message_id"])
    await reader.ack(channel, got[1]["message_id"])
    refusal = await handled(reader)  # both acks handled, neither answered
    assert reader.errors() == [refusal]
    await reader.close()
    again = await api.connect(b)
    assert [m["text"] for m in again.messages(channel)] == ["c4"]
    # Cursors given in hello win over stored ones.
    third = await api.connect(b, cursors={channel: got[0]["message_id"]})
    assert [m["text"] for m in third.messages(channel)] == ["c1", "c2", "c3", "c4"]


async def test_a_new_device_starts_at_its_creation_time(api: Api) -> None:
    a = await api.new_device()
    b_name = await api.new_user()
    b = await api.add_device(b_name)
    channel = await api.direct(a, b.user_id)
    sender = await api.connect(a)
    await sender.send_message(channel, "old news")
    [old_news] = await sender.collect_messages(channel, 1)
    # A sync starts at the millisecond its device was made: the new device is made in a later
    # millisecond than the message (the clock is the condition here, so it is waited on).
    await asyncio.sleep(max(id_unix_ms(int(old_news["message_id"])) + 1 - now_ms(), 0) / 1000)
    fresh = await api.add_device(b_name, "new phone")
    socket = await api.connect(fresh)
    assert socket.messages(channel) == []
    old = await api.connect(b)
    assert [m["text"] for m in old.messages(channel)] == ["old news"]


@pytest.fixture
async def strict_gateway(stack: Stack) -> AsyncIterator[Process]:
    """A second gateway with the default send rate limit (20/s, burst 50)."""
    gateway = await asyncio.to_thread(
        stack.start_gateway, PARLEY_SEND_RATE_PER_S="20", PARLEY_SEND_BURST="50"
    )
    yield gateway
    await asyncio.to_thread(gateway.stop)


async def test_sends_beyond_the_rate_limit_are_refused_and_never_stored(
    api: Api, strict_gateway: Process
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a, url=strict_gateway.ws_url)
    for i in range(80):
        await socket.send_message(channel, f"flood {i}", client_msg_id=f"flood-{i}")

    answers = 0

    def answer(frame: Frame) -> bool:  # every send is answered: accepted or refused
        nonlocal answers
        answers += frame["type"] == "accepted" or frame["type"] == "error"
        return answers == 80

    await socket.until(answer)
    limited = [f["ref"] for f in socket.errors() if f["code"] == "rate_limited"]
    accepted = [f["client_msg_id"] for f in socket.frames or [] if f["type"] == "accepted"]
    assert len(limited) >= 20 and 50 <= len(accepted) <= 60
    assert sorted(limited + accepted) == sorted(f"flood-{i}" for i in range(80))
    await socket.collect_messages(channel, len(accepted))  # stored: echoed to the sender
    # A rate-limited send was never queued: history holds exactly the accepted ones.
    history = await api.all_history(a, channel)
    assert [m["client_msg_id"] for m in history] == accepted
    # And the socket on the other gateway got them too (a misrouted client is only slower).
    reader = await api.connect(b)
    assert [m["client_msg_id"] for m in reader.messages(channel)] == accepted
