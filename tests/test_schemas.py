"""schemas/ is the source of truth: the JSON Schema files match the models, and what the system
actually sends (frames on sockets, events on topics) validates against them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
from hypothesis import given
from hypothesis import strategies as st

from processors.fanout import inbox_records
from schemas.events import InboxMessageV1
from schemas.export import JSON_DIR, documents
from schemas.ids import EPOCH_MS, iso_ms
from schemas.message import Message
from schemas.settings import Settings
from tests.conftest import Api
from topics.definitions import inbox_partition, inbox_topic, messages_topic
from topics.tap import tap


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((JSON_DIR / f"{name}.json").read_bytes())
    return loaded


def test_committed_json_schemas_match_the_models() -> None:
    for name, text in documents().items():
        assert (JSON_DIR / name).read_bytes() == text + b"\n", (
            f"run `parley schemas`: {name} is stale"
        )


async def test_every_server_frame_validates_against_its_schema(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    await socket.send_message(channel, "schema check")
    await socket.send_frame({"type": "teleport"})
    await socket.send_message("999", "nope")

    def every_kind(_: object) -> bool:  # its accepted, its message, and both errors
        kinds = [f["type"] for f in socket.frames or []]
        return kinds.count("accepted") == kinds.count("message") == 1 and kinds.count("error") == 2

    await socket.until(every_kind)
    frames = socket.frames or []
    assert {f["type"] for f in frames} == {"welcome", "synced", "accepted", "message", "error"}
    for frame in frames:
        jsonschema.validate(frame, schema(f"server.{frame['type']}.v1"))


async def test_events_on_topics_validate_against_their_schemas(
    api: Api, settings: Settings
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.group(a, [b.user_id])
    socket = await api.connect(a)
    await socket.send_message(channel, "event check")
    await socket.collect_messages(channel, 1)
    seen: list[dict[str, Any]] = []
    for topic in (messages_topic(settings).name, inbox_topic(settings).name):
        lines: list[bytes] = []
        await asyncio.wait_for(
            tap(settings, topic, lines.append, from_beginning=True, follow=False), 60
        )
        for line in lines:
            event = orjson.loads(line)
            del event["_partition"], event["_offset"]
            # Only this test's channel: other tests put deliberately bad events on the topic.
            if channel not in (event.get("channel_id"), event.get("message", {}).get("channel_id")):
                continue
            jsonschema.validate(event, schema(f"{event['type']}.v{event['v']}"))
            seen.append(event)
    assert {e["type"] for e in seen} == {
        "message.send",
        "channel.members",
        "inbox.message",
        "inbox.membership",  # the group's creation, for the gateways' membership caches
    }


def test_fan_out_records_are_the_inbox_event_byte_for_byte() -> None:
    """The fan-out encodes a message once for all its records; what it writes must be exactly
    what the `inbox.message` model writes, with each recipient in its record's partition."""
    message = Message(
        channel_id="42",
        message_id=7_000_000_000_001,
        sender_id="1",
        sender_device_id="2",
        client_msg_id='q"uote\\',
        text='émoji 🎉, "quotes", \\ back\nslash \u2028 and \x00',
        sent_at="2026-11-26T00:00:00.000Z",
    )
    recipients = [str(10_000 + i) for i in range(100)]
    records = inbox_records(message, recipients, 16)
    assert sorted(u for _, raw in records for u in orjson.loads(raw)["recipients"]) == sorted(
        recipients
    )
    for partition, raw in records:
        event = InboxMessageV1.model_validate_json(raw)
        assert raw == event.encode()
        assert event.message == message
        assert all(inbox_partition(u, 16) == partition for u in event.recipients)


@given(st.integers(min_value=0, max_value=(1 << 41) + EPOCH_MS))
def test_iso_ms_is_the_datetimes_iso_form_to_the_millisecond(unix_ms: int) -> None:
    made = datetime.fromtimestamp(unix_ms / 1000, tz=UTC)
    assert iso_ms(unix_ms) == made.isoformat(timespec="milliseconds").replace("+00:00", "Z")
