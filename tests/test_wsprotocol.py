"""The gateway's own frame encoding (gateway/wsprotocol.py) writes what wsproto would, and the
uvicorn and wsproto internals it relies on are still there."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from uvicorn.server import ServerState
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol

from gateway.wsprotocol import (
    FAST_FRAME_BYTES,
    HANDSHAKE_DONE,
    EventList,
    EventQueue,
    Flag,
    LeanWSProtocol,
    read_text_frames,
    text_frame,
)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
@pytest.mark.parametrize("char", ["a", "é", "😀"])
def test_text_frame_is_wsprotos_frame_byte_for_byte(size: int, char: str) -> None:
    text = (char * size)[:size] if char == "a" else char * (size // len(char.encode()))
    expected = FrameProtocol(client=False, extensions=[]).send_data(text)
    assert text_frame(text) == bytes(expected)


# --- what gateway/wsprotocol.py assumes of uvicorn and wsproto (pinned in pyproject.toml) -------
# Each test fails when an upgrade breaks an assumption, before memory or delivery silently do.


def _uses(cls: type, receiver: str) -> set[str]:
    """The attribute names `cls`'s own source reads or calls on `receiver` (e.g. `self.queue`)."""
    source = inspect.getsource(cls)
    return set(re.findall(rf"\b{re.escape(receiver)}\.(\w+)", source))


def test_every_attribute_uvicorns_protocol_sets_is_a_slot_so_no_instance_dict_is_made() -> None:
    assigned = set(
        re.findall(r"\bself\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(WSProtocol))
    )
    assert assigned <= set(LeanWSProtocol.__slots__), assigned - set(LeanWSProtocol.__slots__)


def test_a_new_protocol_keeps_nothing_in_an_instance_dict() -> None:
    config = Config(app=None, ws="wsproto")
    config.load()  # type: ignore[no-untyped-call]
    loop = asyncio.new_event_loop()
    try:
        protocol = LeanWSProtocol(config, ServerState(), {}, _loop=loop)
        assert vars(protocol) == {}
    finally:
        loop.close()


def test_uvicorn_asks_of_the_queue_and_the_flag_only_what_they_provide() -> None:
    assert _uses(WSProtocol, "self.queue") <= {"put_nowait", "get", "empty"}
    assert _uses(WSProtocol, "self.writable") <= {"set", "clear", "wait", "is_set"}
    for name in ("put_nowait", "get", "empty"):
        assert callable(getattr(EventQueue, name))
    for name in ("set", "clear", "wait", "is_set"):
        assert callable(getattr(Flag, name))


def test_the_state_write_text_now_reads_is_still_uvicorns_and_wsprotos() -> None:
    assigned = set(
        re.findall(r"\bself\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(WSProtocol))
    )
    for name in (
        "disconnected",
        "close_sent",
        "handshake_complete",
        "response_started",
        "writable",
    ):
        assert name in assigned, name
    assert hasattr(WSProtocol, "send") and inspect.iscoroutinefunction(WSProtocol.send)
    # After the handshake, wsproto's connection asks its handshake object only for `events()`
    # (the stand-in provides it), and reads its state from the connection proper.
    assert _uses(WSConnection, "self.handshake") <= {
        "state",
        "initiate_upgrade_connection",
        "send",
        "connection",
        "receive_data",
        "events",
    }
    assert inspect.getsource(WSConnection.events).count("self.handshake.events()") == 1
    assert list(HANDSHAKE_DONE.events()) == []
    assert ConnectionState.OPEN.name == "OPEN"


def test_an_open_connection_uses_its_events_only_as_the_event_list_provides() -> None:
    # wsproto's open connection appends to, tests and pops the head of `_events`: nothing else.
    assert _uses(Connection, "self._events") == {"append", "popleft"}
    server, client = WSConnection(ConnectionType.SERVER), WSConnection(ConnectionType.CLIENT)
    server.receive_data(client.send(Request(host="parley", target="/v1/ws")))
    assert [type(e) for e in server.events()] == [Request]
    client.receive_data(server.send(AcceptConnection()))
    assert server.connection is not None
    server.connection._events = EventList(server.connection._events)  # as LeanWSProtocol does
    server.receive_data(client.send(Message(data="hello")))
    server.receive_data(None)  # the peer vanished: wsproto queues an abnormal closure
    events = list(server.events())
    assert [type(e) for e in events] == [CloseConnection, TextMessage]  # wsproto's own order
    assert [e.data for e in events if isinstance(e, TextMessage)] == ["hello"]
    assert not server.connection._events


def test_uvicorns_receive_is_still_a_get_then_reading_resumed_once_the_queue_is_empty() -> None:
    # LeanWSProtocol.receive does this inside the queue's `get` (one frame fewer per socket).
    body = [
        line.strip()
        for line in inspect.getsource(WSProtocol.receive).splitlines()[1:]
        if line.strip()
    ]
    assert body == [
        "message = await self.queue.get()",
        "if self.read_paused and self.queue.empty():",
        "self.read_paused = False",
        "self.transport.resume_reading()",
        "return message",
    ]


def test_the_lean_receive_resumes_reading_once_the_last_waiting_event_is_taken() -> None:
    config = Config(app=None, ws="wsproto")
    config.load()  # type: ignore[no-untyped-call]
    resumed: list[bool] = []

    class Transport:
        def resume_reading(self) -> None:
            resumed.append(True)

    async def scenario() -> None:
        protocol = LeanWSProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        protocol.transport = Transport()  # type: ignore[assignment]
        protocol.read_paused = True
        protocol.queue.put_nowait("first")
        protocol.queue.put_nowait("second")
        assert await protocol.receive() == "first"
        assert resumed == []  # one still waits: reading stays paused
        assert await protocol.receive() == "second"
        assert resumed == [True] and protocol.read_paused is False
        # Put once `receive` waits on the empty queue (the loop runs callbacks after it yields).
        asyncio.get_running_loop().call_soon(protocol.queue.put_nowait, "third")
        assert await protocol.receive() == "third"
        assert resumed == [True]  # not paused then: nothing to resume

    asyncio.run(scenario())


# --- the text frames read without wsproto (`LeanWSProtocol.data_received`) --------------------


def _client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, long_form: bool = False
) -> bytes:
    """One frame as a client writes it (RFC 6455 §5.2), or as a client should not: unmasked, or
    its length in the longer form than it needs."""
    size = len(payload)
    head = bytes(((0x80 if fin else 0) | opcode,))
    mask_bit = 0x80 if masked else 0
    if size < 126 and not long_form:
        head += bytes((mask_bit | size,))
    elif size <= 0xFFFF:
        head += bytes((mask_bit | 126,)) + size.to_bytes(2, "big")
    else:
        head += bytes((mask_bit | 127,)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = bytes((0x37, 0xFA, 0x21, 0x3D))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


_texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "x" * 125, "x" * 126, "é" * 70_000, '{"type":"send","text":"héllo 😀"}']
)
_frames = st.one_of(
    _texts.map(lambda t: _client_frame(0x1, t.encode())),
    _texts.map(lambda t: _client_frame(0x1, t.encode(), long_form=True)),
    st.binary(max_size=20).map(lambda b: _client_frame(0x2, b)),  # binary
    st.binary(max_size=20).map(lambda b: _client_frame(0x9, b)),  # ping
    st.just(_client_frame(0x1, b"abc", fin=False) + _client_frame(0x0, "déf".encode())),
    st.just(_client_frame(0x1, b"\xff\xfe not UTF-8")),
    st.just(_client_frame(0x1, b"unmasked", masked=False)),
    st.just(_client_frame(0x8, (1000).to_bytes(2, "big") + b"bye")),  # close
)


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _read(protocol_class: type[WSProtocol], chunks: list[bytes]) -> tuple[list[Any], list[bytes]]:
    """What an open socket of `protocol_class` hands the app and writes back, given `chunks`."""
    config = Config(app=None, ws="wsproto")
    config.load()  # type: ignore[no-untyped-call]
    loop = asyncio.new_event_loop()
    try:
        protocol = protocol_class(config, ServerState(), {}, _loop=loop)
        transport = _Transport()
        protocol.transport = transport  # type: ignore[assignment]
        client = WSConnection(ConnectionType.CLIENT)
        protocol.conn.receive_data(client.send(Request(host="parley", target="/v1/ws")))
        assert [type(e) for e in protocol.conn.events()] == [Request]
        protocol.conn.send(AcceptConnection())
        protocol.handshake_complete = True
        for chunk in chunks:
            if transport.closed:
                break
            protocol.data_received(chunk)
        queue: Any = protocol.queue
        items = list(queue._items or ()) if isinstance(queue, EventQueue) else []
        while isinstance(queue, asyncio.Queue) and not queue.empty():
            items.append(queue.get_nowait())
        return items, transport.written
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(_frames, max_size=8), cuts=st.lists(st.integers(0, 200_000), max_size=4))
def test_the_fast_read_hands_the_app_and_the_peer_what_uvicorn_and_wsproto_do(
    frames: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(frames)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
    assert _read(LeanWSProtocol, chunks) == _read(WSProtocol, chunks)


def test_whole_text_frames_are_read_without_wsproto_and_the_rest_left_to_it() -> None:
    texts = ["hello", "x" * 126, "é" * 30_000]
    frames = [_client_frame(0x1, t.encode()) for t in texts]
    data = b"".join(frames)
    ping = _client_frame(0x9, b"p")
    assert read_text_frames(data + ping, 1 << 20) == (texts, ping)
    assert read_text_frames(data[:-1], 1 << 20) == (texts[:2], frames[2][:-1])  # cut off
    big = _client_frame(0x1, b"y" * (FAST_FRAME_BYTES + 1))
    assert read_text_frames(big, 1 << 20) == ([], big)
    assert read_text_frames(data, 100) == (["hello"], data[11:])  # over the socket's cap


def test_the_wsproto_state_the_fast_read_checks_is_still_there() -> None:
    server, client = WSConnection(ConnectionType.SERVER), WSConnection(ConnectionType.CLIENT)
    server.receive_data(client.send(Request(host="parley", target="/v1/ws")))
    list(server.events())
    server.send(AcceptConnection())
    assert server.connection is not None
    proto = server.connection._proto
    assert proto.extensions == []
    assert proto._frame_decoder.header is None and proto._frame_decoder.buffer.buffer == b""
    assert proto._message_decoder.opcode is None
    server.receive_data(_client_frame(0x1, b"ab", fin=False) + _client_frame(0x0, b"c")[:3])
    list(server.events())
    assert proto._message_decoder.opcode is not None  # a message begun
    assert proto._frame_decoder.header is not None or proto._frame_decoder.buffer.buffer
