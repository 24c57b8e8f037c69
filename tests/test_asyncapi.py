"""The AsyncAPI document (`GET /v1/asyncapi.json`, gateway/asyncapi.py) is valid for the
AsyncAPI parser, describes every frame, event and topic, and every server frame type, as a
gateway really sends it, validates against it. (Every frame any test reads is checked too: the
autouse fixture of tests/conftest.py.)"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.asyncapi import document
from parley_client import Frame, Session
from schemas.events import ALL_EVENTS
from schemas.frames import ALL_FRAMES
from schemas.settings import Settings
from tests.conftest import Api, handled
from tests.frame_check import problems, server_frame_validators
from tests.stack import Process
from topics.definitions import all_topics

PARSER_DIR = Path(__file__).parent / "asyncapi"


def served(gateway: Process) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.url}/v1/asyncapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    loaded: dict[str, Any] = answer.json()
    return loaded


def test_the_served_document_passes_the_asyncapi_parser(gateway: Process, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "the AsyncAPI check needs node (v20): install nodejs"
    assert (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "run `make test` (or `make asyncapi`): it installs tests/asyncapi's node packages"
    )
    path = tmp_path / "asyncapi.json"
    path.write_bytes(orjson.dumps(served(gateway)))
    checked = subprocess.run(
        [node, str(PARSER_DIR / "validate.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    diagnostics = [orjson.loads(line) for line in checked.stdout.splitlines() if line]
    errors = [d for d in diagnostics if d["severity"] == "Error"]
    assert checked.returncode == 0 and not errors, (checked.stderr, errors)
    # Nothing but the note that AsyncAPI 3.1 exists: no warning either.
    assert {d["code"] for d in diagnostics} <= {"asyncapi-latest-version"}, diagnostics


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The check above can fail: a payload schema that is not one, and a dangling reference."""
    broken = orjson.loads(orjson.dumps(document()))
    broken["components"]["schemas"]["server.welcome.v1"]["type"] = 5
    broken["operations"]["client.hello.v1"]["messages"][0]["$ref"] += "-nope"
    path = tmp_path / "broken.json"
    path.write_bytes(orjson.dumps(broken))
    checked = subprocess.run(
        ["node", str(PARSER_DIR / "validate.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 1
    codes = {orjson.loads(line)["code"] for line in checked.stdout.splitlines()}
    assert {"asyncapi-document-resolved", "invalid-ref"} <= codes


def test_the_document_describes_every_frame_event_and_topic(gateway: Process) -> None:
    doc = document()
    assert served(gateway) == doc
    socket = set(doc["channels"]["socket"]["messages"])
    assert socket == set(ALL_FRAMES)
    # Each event on the topics it travels on; every topic a channel; the dead letters too.
    topics = {t.name for t in all_topics(Settings.model_construct())}
    assert set(doc["channels"]) == {"socket"} | topics
    carried = [m for name in topics for m in doc["channels"][name]["messages"]]
    assert sorted(carried) == sorted([*ALL_EVENTS, "dead_letter"])
    # The client sends what the gateway receives, and the other way round.
    for name in ALL_FRAMES:
        action = doc["operations"][name]["action"]
        assert action == ("receive" if name.startswith("client.") else "send"), name


def test_a_frame_off_the_document_is_reported() -> None:
    validators = server_frame_validators(document())
    welcome = {"type": "welcome", "user_id": "1", "device_id": "2", "heartbeat_interval_s": 15}
    assert problems([welcome], validators) == []
    wrong = [
        {**welcome, "extra": True},
        {k: v for k, v in welcome.items() if k != "device_id"},
        {**welcome, "heartbeat_interval_s": "15"},
        {"type": "error", "code": "oops", "message": "?"},
        {"type": "teleported"},
        {"no": "type"},
    ]
    assert len(problems(wrong, validators)) >= len(wrong)
    assert len([p for p in problems(wrong, validators) if "does not list" in p]) == 2


async def test_every_server_frame_type_as_sent_validates_against_the_document(api: Api) -> None:
    validators = server_frame_validators(document())
    a, b = await api.new_device(), await api.new_device()
    await api.make_friends(a, b)
    channel = await api.direct(a, b.user_id)
    sa, sb = await api.connect(a), await api.connect(b)

    def of(kind: str) -> Any:
        return lambda f: f["type"] == kind

    await sa.subscribe_presence([b.user_id])
    await sa.until(of("presence"))
    await sa.accepted(await sa.send_message(channel, "hello"))
    message_id = (await sb.until(of("message")))["message_id"]
    await sa.accepted(await sa.edit(channel, message_id, "hello!"))
    await sa.accepted(await sa.react(channel, message_id, "👍"))
    await sa.accepted(await sa.pin(channel, message_id))
    await sa.accepted(await sa.pin(channel, message_id, unpin=True))
    await sa.accepted(await sa.send_message(channel, "a reply", reply_to=message_id))
    await sb.read(channel, message_id)
    await sb.until(of("read"))
    await sa.until(of("receipts"))
    await sb.typing(channel)
    await sa.until(of("typing"))
    await api.set_notifications(a, channel, "mentions", None)
    await sa.until(of("notifications"))
    await sa.accepted(await sa.delete(channel, message_id))
    await sb.until(of("delete"))  # after the other changes, in the channel's order
    await handled(sa)  # an `error`
    # A later socket syncs the channel's rows: the message, and its changes as frames.
    late = await api.connect(b)
    frames: list[Frame] = [*(sa.frames or []), *(sb.frames or []), *(late.frames or [])]
    await asyncio.gather(*(s.close() for s in (sa, sb, late)))
    assert problems(frames, validators) == []
    assert {f["type"] for f in frames} == set(validators), "a server frame type not exercised"


def test_sessions_pass_every_frame_to_the_observer() -> None:
    """The hook the whole-suite check rests on is in place (tests/conftest.py)."""
    assert Session.observer is not None
