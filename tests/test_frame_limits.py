"""A 100,000-character text is accepted in any valid JSON encoding of its frame, judged on its
decoded text; a frame over the cap is refused with `too_large` and the socket stays open, and
the gateway's memory does not grow with the frame's size (SPEC §4)."""

from __future__ import annotations

import json

import psutil

from schemas.limits import MAX_FRAME_BYTES, MAX_TEXT_CHARS
from tests.conftest import Api
from tests.stack import Process


def escaped_send(channel_id: str, client_msg_id: str, text: str) -> str:
    """The frame as Python's `json.dumps` writes it by default: every non-ASCII character as
    `\\uXXXX`, astral ones as surrogate pairs."""
    frame = {"type": "send", "client_msg_id": client_msg_id, "channel_id": channel_id}
    return json.dumps({**frame, "text": text})


async def test_longest_text_in_its_largest_json_encoding_is_accepted_and_arrives_intact(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket, reader = await api.connect(a), await api.connect(b)
    hangul = "한" * MAX_TEXT_CHARS  # 6 bytes each escaped: 600 KB
    emoji = "😀" * MAX_TEXT_CHARS  # 12 bytes each escaped (a surrogate pair): 1.2 MB
    for cmid, text in (("hangul", hangul), ("emoji", emoji)):
        raw = escaped_send(channel, cmid, text)
        assert len(raw) > 500_000
        await socket.send_raw(raw)
        accepted = await socket.until(lambda f: f["type"] in ("accepted", "error"))
        assert accepted == {"type": "accepted", "client_msg_id": cmid, "channel_id": channel}
    got = await reader.collect_messages(channel, 2)
    assert [(m["client_msg_id"], m["text"]) for m in got] == [("hangul", hangul), ("emoji", emoji)]


async def test_one_character_over_in_an_escaped_frame_is_too_large_with_its_ref(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    await socket.send_raw(escaped_send(channel, "over", "😀" * (MAX_TEXT_CHARS + 1)))
    refused = await socket.next()
    assert refused == {**refused, "type": "error", "code": "too_large", "ref": "over"}


async def test_frame_over_the_cap_is_refused_with_its_ref_and_the_socket_stays_open(
    api: Api, gateway: Process
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    process = psutil.Process(gateway.popen.pid)
    before = process.memory_info().rss
    huge = 64 * 1024 * 1024  # 64 MiB of text: 43 times the cap
    assert huge > 40 * MAX_FRAME_BYTES
    await socket.send_raw(escaped_send(channel, "huge", "a" * huge))
    refused = await socket.next(60)
    assert refused == {**refused, "type": "error", "code": "too_large", "ref": "huge"}
    # Dropped as it arrived: the gateway grew by far less than the frame.
    assert process.memory_info().rss - before < 16 << 20
    # Open, and working.
    await socket.send_raw(escaped_send(channel, "after", "fine"))
    accepted = await socket.next()
    assert accepted == {"type": "accepted", "client_msg_id": "after", "channel_id": channel}
