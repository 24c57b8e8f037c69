"""The client library (parley_client/): it stands apart from the server, and it reports
failures as the protocol names them. Everything else it does, every other test uses."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import parley_client
from devstack.embedded.process import free_port
from parley_client import ApiError, CloseCode, Session, SessionError, encode_frame, ws_url_of
from tests.conftest import Api

SERVER_PACKAGES = {"parley", "gateway", "processors", "storage", "topics", "schemas"}
ALLOWED = {"httpx", "websockets", "orjson", "parley_client"}


def test_the_library_imports_only_httpx_websockets_orjson_and_the_standard_library() -> None:
    package = Path(parley_client.__file__).parent
    imported: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names - ALLOWED == set()
    # And at run time nothing drags a server package in.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, parley_client; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=package.parent,
    ).stdout.split()
    assert "parley_client" in loaded
    assert SERVER_PACKAGES.isdisjoint(loaded), SERVER_PACKAGES.intersection(loaded)


def test_the_websocket_url_of_a_gateway() -> None:
    assert ws_url_of("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/v1/ws"
    assert ws_url_of("https://chat.example/") == "wss://chat.example/v1/ws"


async def test_an_http_error_carries_its_status_code_and_message(api: Api) -> None:
    device = await api.new_device()
    with pytest.raises(ApiError) as caught:
        await api.open_direct(device, "4242")
    error = caught.value
    assert (error.status, error.code, error.method, error.path) == (
        404,
        "not_found",
        "POST",
        "/v1/channels",
    )
    assert error.message and "404 not_found" in str(error)


async def test_a_refused_session_raises_session_error_with_its_kind(api: Api) -> None:
    with pytest.raises(SessionError) as refused:
        await Session.connect(api.ws_url, "not-a-token", timeout_s=10)
    assert refused.value.kind == "error_unauthorized"
    with pytest.raises(SessionError) as nobody:
        await Session.connect(f"ws://127.0.0.1:{free_port()}/v1/ws", "t", timeout_s=10)
    assert nobody.value.kind.startswith("os_")


async def test_a_closed_session_reports_its_close_code_and_refuses_to_send(api: Api) -> None:
    device = await api.new_device()
    session = await api.connect(device)
    assert session.welcome is not None and session.welcome.device_id == device.device_id
    assert session.sync_messages == 0 and session.synced_s is not None
    await api.log_out(device)
    assert await session.wait_closed() == CloseCode.UNAUTHORIZED
    with pytest.raises(SessionError) as caught:
        await session.next()
    assert (caught.value.kind, caught.value.close_code) == ("closed_4001", 4001)
    with pytest.raises(SessionError):
        await session.heartbeat()

    dropped = await api.connect(await api.new_device())
    await dropped.abort()  # no closing handshake: what a vanished peer looks like
    assert not dropped.is_open and dropped.close_code == CloseCode.ABNORMAL


def test_the_readme_example_runs_against_a_gateway(api: Api) -> None:
    readme = (Path(parley_client.__file__).parent / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"http://127.0.0.1:8080"' in example
    ran = subprocess.run(
        [sys.executable, "-c", example.replace("http://127.0.0.1:8080", api.base_url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    text, message_id = ran.stdout.split()[-3:-1], ran.stdout.split()[-1]
    assert text == ["hi", "bob"] and message_id.isdigit()


async def test_many_sessions_read_raw_stamped_frames_and_send_text_encoded_once(api: Api) -> None:
    """What a load generator does: sockets by the dozen with no frame kept, a frame encoded
    once for all, frames taken undecoded with the time they were read, and the sync counted."""
    sender, reader = await api.new_device(), await api.new_device()
    channel = await api.direct(sender, reader.user_id)
    # Five devices of the reader, four sockets each (a device may have eight per gateway).
    devices = [await api.add_device(reader.username) for _ in range(5)]
    s = await api.connect(sender)
    for i in range(3):
        await s.send_message(channel, f"before {i}")
    await s.collect_messages(channel, 3)
    sessions = await asyncio.gather(
        *(
            Session.connect(api.ws_url, d.token, proxy=None, max_queue=256)
            for d in devices
            for _ in range(4)
        )
    )
    assert [x.sync_messages for x in sessions] == [3] * 20  # never acked: all synced again
    assert all(x.frames is None for x in sessions)
    beat = encode_frame({"type": "heartbeat"})
    await asyncio.gather(*(x.send_raw(beat) for x in sessions))
    before = time.monotonic_ns()
    await s.send_message(channel, "live", client_msg_id="live-1")

    async def first_message(session: Session) -> tuple[int, Any]:
        async for read_at, raw in session.stamped_frames():
            frame = orjson.loads(raw)
            if frame["type"] == "message":
                return read_at, frame
        raise AssertionError(f"closed with {session.close_code}")

    got = await asyncio.wait_for(asyncio.gather(*(first_message(x) for x in sessions)), 30)
    assert all(read_at > before and frame["client_msg_id"] == "live-1" for read_at, frame in got)
    await asyncio.gather(*(x.close() for x in sessions))
    assert {x.close_code for x in sessions} == {CloseCode.NORMAL}
