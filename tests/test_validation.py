"""Bad input gets a clear error at the edge, and what the edge accepts can be stored: no 500,
no accepted send dead-lettered later (SPEC §4, "accepted means stored")."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import orjson
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.commands.messages import check_text
from gateway.errors import ApiError as Refused
from gateway.frames import FrameError, parse_frame
from parley_client import ApiError
from schemas.frames import Send
from schemas.ids import MAX_ID, id_floor, iso_ms, now_ms
from schemas.limits import MAX_CLIENT_MSG_ID_CHARS, MAX_TEXT_CHARS
from schemas.message import Message
from schemas.settings import Settings
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.pool import open_pool
from tests.conftest import PASSWORD, Api
from tests.stack import Process

# Text as clients may send it: any code point JSON can carry, control characters included.
any_text = st.text(st.characters(codec="utf-8"), min_size=0, max_size=80)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Beside anything at all, enough valid values that valid sends are common.
cmids_or_not = st.one_of(
    any_text, st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1)
)
texts = st.one_of(any_text, st.text(st.characters(codec="utf-8"), min_size=1, max_size=300))
ids_or_not = st.one_of(
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.integers(min_value=1, max_value=MAX_ID).map(str),
    st.text(st.characters(codec="utf-8"), max_size=24),
)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def message_store(
    postgres_dsn: str, loop: asyncio.AbstractEventLoop
) -> Iterator[PostgresMessageStore]:
    pool = loop.run_until_complete(open_pool(Settings(postgres_dsn=postgres_dsn)))
    yield PostgresMessageStore(pool)
    loop.run_until_complete(pool.close())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(client_msg_id=cmids_or_not, channel_id=ids_or_not, text=texts)
def test_every_send_the_gateway_accepts_can_be_stored(
    client_msg_id: str,
    channel_id: str,
    text: str,
    message_store: PostgresMessageStore,
    loop: asyncio.AbstractEventLoop,
) -> None:
    raw = orjson.dumps(
        {"type": "send", "client_msg_id": client_msg_id, "channel_id": channel_id, "text": text}
    ).decode()
    # The rules of docs/protocol.md, said again here: the gateway must accept exactly these.
    valid = (
        0 < len(client_msg_id) <= MAX_CLIENT_MSG_ID_CHARS
        and not CONTROL.search(client_msg_id)
        and re.fullmatch("[1-9][0-9]{0,18}", channel_id) is not None
        and int(channel_id) <= MAX_ID
        and 0 < len(text) <= MAX_TEXT_CHARS
        and "\x00" not in text
    )
    try:
        frame, _ = parse_frame(raw)
        assert isinstance(frame, Send), frame
        check_text(frame.text)
    except (FrameError, Refused) as refused:
        assert not valid, f"a valid send refused: {refused}"
        assert refused.code in ("invalid", "too_large")
        return
    assert valid, "an invalid send accepted"
    # Accepted: the store must take it (Postgres is the strictest store: no NUL in text).
    sent_at = now_ms()
    message = Message(
        channel_id=frame.channel_id,
        message_id=id_floor(sent_at) + 1,
        sender_id="1",
        sender_device_id=str(uuid.uuid4().int >> 65),
        client_msg_id=frame.client_msg_id,
        text=frame.text,
        sent_at=iso_ms(sent_at),
    )
    loop.run_until_complete(message_store.insert([message]))


async def test_ids_names_and_cursors_that_cannot_be_stored_are_refused_with_invalid(
    api: Api,
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    for frame in (
        {"type": "send", "client_msg_id": "nul\x00here", "channel_id": channel, "text": "x"},
        {"type": "send", "client_msg_id": "tab\there", "channel_id": channel, "text": "x"},
        {"type": "send", "client_msg_id": "ok", "channel_id": "١٢٣", "text": "x"},
        {"type": "send", "client_msg_id": "ok2", "channel_id": "12\x00", "text": "x"},
        {"type": "ack", "channel_id": "²", "message_id": "1"},
        {"type": "presence.subscribe", "user_ids": ["1\x00"]},
        {"type": "presence.subscribe", "user_ids": [b.user_id] * 1001},
    ):
        await socket.send_frame(frame)
        error = await socket.until(lambda f: f["type"] == "error")
        assert error["code"] == "invalid", (frame, error)
    # Nothing was accepted, and the socket still serves.
    await socket.send_message(channel, "still here", client_msg_id="after")
    accepted = await socket.accepted("after")
    assert [f for f in socket.frames or [] if f["type"] == "accepted"] == [accepted]

    checks = [
        ("GET", f"/v1/channels/{channel}/messages?limit=²", None),
        ("GET", f"/v1/channels/{channel}/messages?before=²", None),
        ("GET", f"/v1/channels/{channel}/messages?after=%00", None),
        ("GET", "/v1/channels/%00/messages", None),
        ("GET", "/v1/channels/12%C2%B2/messages", None),
        ("POST", "/v1/channels", {"type": "direct", "user_id": "\x00"}),
        ("POST", "/v1/channels", {"type": "group", "name": "a\x00b", "member_ids": [b.user_id]}),
        ("POST", "/v1/channels", {"type": "group", "name": "g", "member_ids": ["x\x00"]}),
        ("POST", f"/v1/channels/{channel}/members", {"user_id": "²"}),
        ("PUT", "/v1/friends/%00", None),
        ("GET", "/v1/presence?user_ids=1%00", None),
    ]
    for method, path, body in checks:
        response = await api.request(
            method, path, auth=a, content=None if body is None else orjson.dumps(body)
        )
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["error"]["code"] == "invalid"

    for body in (
        {"username": "trailing\n", "password": PASSWORD},
        {"username": f"n{uuid.uuid4().hex[:8]}", "password": PASSWORD, "display_name": "a\x00"},
    ):
        response = await api.request("POST", "/v1/users", json=body)
        assert response.status_code == 422, (body, response.text)
    with pytest.raises(ApiError) as refused:
        await api.log_in(a.username, PASSWORD, device_name="\x00")
    assert (refused.value.status, refused.value.code) == (422, "invalid")


async def test_a_huge_streamed_body_is_refused_without_being_read_whole(
    api: Api, gateway: Process
) -> None:
    process = psutil.Process(gateway.popen.pid)
    before = process.memory_info().rss
    chunk = b"x" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(200):  # 200 MiB, had the server kept reading
            yield chunk

    try:
        response = await api.http.post(
            "/v1/users", content=body(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
    except Exception as exc:  # the server may close the connection once it has answered
        assert "413" in str(exc) or "closed" in str(exc).lower() or "reset" in str(exc).lower(), exc
    # Bounded: far less than the body, whatever the allocator keeps.
    assert process.memory_info().rss - before < 32 << 20
    # And the gateway serves on.
    assert (await api.healthz())["status"] == "ok"


async def test_a_log_in_with_a_name_no_account_can_have_is_bad_credentials(api: Api) -> None:
    for username in ("a\x00b", "UPPER", "x" * 200):
        response = await api.request(
            "POST", "/v1/sessions", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 401, (username, response.text)
        assert response.json()["error"]["code"] == "bad_credentials"
