"""The WebSocket protocol (SPEC §3, §4): handshake, every client frame, every error code, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.client import Api, Socket
from tests.stack import Process, Stack


async def closed(socket: Socket, timeout: float = 10) -> int | None:
    await asyncio.wait_for(socket.ws.wait_closed(), timeout)
    return socket.ws.close_code


async def test_hello_gets_welcome_then_synced(api: Api) -> None:
    device = await api.new_device()
    socket = await api.raw_socket()
    await socket.send({"type": "hello", "token": device.token})
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
    socket = await api.raw_socket()
    if isinstance(first, dict):
        await socket.send(first)
    elif isinstance(first, str):
        await socket.ws.send(first)
    frame = await socket.next()
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    assert await closed(socket) == 4001


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
        await socket.ws.send(raw)
        frame = await socket.next()
        assert frame["type"] == "error" and frame["code"] == code, (raw, frame)
        assert frame.get("ref") == ref, (raw, frame)
        assert frame["message"]
    # Still open and working.
    cmid = await socket.send_text(channel, "still here")
    assert (await socket.until(lambda f: f["type"] == "accepted"))["client_msg_id"] == cmid


async def test_heartbeat_is_accepted_silently(api: Api) -> None:
    socket = await api.connect(await api.new_device())
    await socket.send({"type": "heartbeat"})
    await socket.settle(0.3)
    assert socket.errors() == []


async def test_text_of_100000_multibyte_characters_is_accepted_and_one_more_is_too_large(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    reader = await api.connect(b)
    longest = "é" * 50_000 + "😀" * 50_000  # 100,000 characters, 300,000 bytes of UTF-8
    await socket.send_text(channel, longest + "x", client_msg_id="too-long")
    frame = await socket.next()
    assert frame == {**frame, "type": "error", "code": "too_large", "ref": "too-long"}
    await socket.send_text(channel, longest, client_msg_id="longest")
    got = (await reader.collect_messages(channel, 1))[0]
    assert got["text"] == longest and got["client_msg_id"] == "longest"
    assert [m["client_msg_id"] for m in await api.history(b, channel)] == ["longest"]


async def test_compression_a_browser_offers_is_declined_and_frames_of_every_length_arrive_whole(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    # The test client offers permessage-deflate on every socket, as browsers do.
    reader = await api.connect(b)
    request, response = reader.ws.request, reader.ws.response
    assert request is not None and response is not None
    assert "permessage-deflate" in (request.headers.get("Sec-WebSocket-Extensions") or "")
    assert response.headers.get("Sec-WebSocket-Extensions") is None
    socket = await api.connect(a)
    # Frame lengths on both sides of the 7-bit, 16-bit and 64-bit length encodings.
    texts = ["", "a" * 20, "é" * 100, "b" * 65_400, "😀" * 16_400, "c" * 100_000]
    for i, text in enumerate(texts):
        await socket.send_text(channel, text or "-", client_msg_id=f"len-{i}")
    got = await reader.collect_messages(channel, len(texts))
    assert [m["text"] for m in got] == [t or "-" for t in texts]


async def test_send_to_a_channel_one_is_not_in_gets_not_member(api: Api) -> None:
    a, b, outsider = await api.new_device(), await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(outsider)
    reader = await api.connect(b)
    await socket.send_text(channel, "let me in", client_msg_id="nope")
    frame = await socket.next()
    assert frame == {**frame, "type": "error", "code": "not_member", "ref": "nope"}
    await socket.send_text("12345", "nowhere", client_msg_id="nope2")
    assert (await socket.next())["code"] == "not_member"
    await socket.send({"type": "ack", "channel_id": channel, "message_id": "1"})
    assert (await socket.next())["code"] == "not_member"
    await reader.settle(0.5)
    assert reader.messages() == []
    assert await api.history(b, channel) == []


async def test_removed_member_can_no_longer_send(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.group(a, [b.user_id])
    socket = await api.connect(b)
    await socket.send_text(channel, "in")
    await socket.collect_messages(channel, 1)  # stored and delivered
    response = await api.http.delete(f"/v1/channels/{channel}/members/{b.user_id}", headers=a.auth)
    assert response.status_code == 204
    await socket.send_text(channel, "out", client_msg_id="after-removal")
    await socket.until(lambda f: f["type"] == "error" and f.get("ref") == "after-removal")
    assert [m["text"] for m in await api.history(a, channel)] == ["in"]


async def test_ack_moves_the_cursor_forward_only_and_sync_starts_after_it(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    sender = await api.connect(a)
    for i in range(5):
        await sender.send_text(channel, f"c{i}")
    got = await sender.collect_messages(channel, 5)
    reader = await api.connect(b)
    assert [m["text"] for m in reader.messages(channel)] == [f"c{i}" for i in range(5)]
    await reader.send({"type": "ack", "channel_id": channel, "message_id": got[3]["message_id"]})
    await reader.send({"type": "ack", "channel_id": channel, "message_id": got[1]["message_id"]})
    await reader.settle(0.3)
    assert reader.errors() == []
    await reader.close()
    again = await api.connect(b)
    assert [m["text"] for m in again.messages(channel)] == ["c4"]
    # Cursors given in hello win over stored ones.
    third = await api.connect(b, cursors={channel: got[0]["message_id"]})
    assert [m["text"] for m in third.messages(channel)] == ["c1", "c2", "c3", "c4"]


async def test_a_new_device_starts_at_its_creation_time(api: Api) -> None:
    a = await api.new_device()
    b_name = await api.signup()
    b = await api.login(b_name)
    channel = await api.direct(a, b.user_id)
    sender = await api.connect(a)
    await sender.send_text(channel, "old news")
    await sender.collect_messages(channel, 1)
    await asyncio.sleep(0.01)
    fresh = await api.login(b_name, "new phone")
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


async def test_sending_faster_than_the_rate_limit_gets_rate_limited(
    api: Api, strict_gateway: Process
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a, url=strict_gateway.ws_url)
    for i in range(80):
        await socket.send_text(channel, f"flood {i}", client_msg_id=f"flood-{i}")
    await socket.settle(1.0)
    limited = [f["ref"] for f in socket.errors() if f["code"] == "rate_limited"]
    accepted = [f["client_msg_id"] for f in socket.frames if f["type"] == "accepted"]
    assert len(limited) >= 20 and 50 <= len(accepted) <= 60
    assert sorted(limited + accepted) == sorted(f"flood-{i}" for i in range(80))
    # A rate-limited send was never queued: history holds exactly the accepted ones.
    history = await api.all_history(a, channel)
    assert [m["client_msg_id"] for m in history] == accepted
    # And the socket on the other gateway got them too (a misrouted client is only slower).
    reader = await api.connect(b)
    assert [m["client_msg_id"] for m in reader.messages(channel)] == accepted
