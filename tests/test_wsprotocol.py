"""The gateway's own frame encoding (gateway/wsprotocol.py) writes what wsproto would, and the
uvicorn and wsproto internals it relies on are still there."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from uvicorn.server import ServerState
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol

from gateway.wsprotocol import (
    HANDSHAKE_DONE,
    EventList,
    EventQueue,
    Flag,
    LeanWSProtocol,
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
