"""Soak on `parley dev` (what `make dev` runs): tens of thousands of messages, one channel far
busier than the rest, every one delivered once and in order to every device, history complete,
and the stack still answering afterwards. Bounds are for correctness, not speed: the deadlines
are generous, and the figures are measured by `make bench`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devstack.embedded.postgres import EmbeddedPostgres
from devstack.embedded.process import free_port
from parley_client import Login, Session
from tests.conftest import MARK, Api, before_mark, marked
from tests.stack import start_dev

BUSY = 20_000  # messages in the one busy channel
QUIET_CHANNELS = 30
PER_QUIET = 1_000  # 30,000 more, so 50,000 in all
WINDOW = 200  # sends in flight per socket (not yet `accepted`)
DEADLINE_S = 900.0
HEARTBEAT_S = 5.0  # the clients' heartbeat (the server asks for one every 15 s)


async def pump(socket: Session, channel_id: str, texts: list[str]) -> None:
    """Send `texts` in order, at most WINDOW unconfirmed; return when all were accepted."""
    accepted = 0
    sent = 0
    while accepted < len(texts):
        while sent < len(texts) and sent - accepted < WINDOW:
            await socket.send_message(channel_id, texts[sent], client_msg_id=f"c{sent}")
            sent += 1
        frame = await socket.next(120)
        assert frame["type"] != "error", frame
        if frame["type"] == "accepted" and frame["channel_id"] == channel_id:
            accepted += 1


async def heartbeat(sockets: list[Session]) -> None:
    """What a client does between frames: a socket silent for three intervals is closed."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)  # the protocol's cadence, not a wait for anything
        for socket in sockets:
            await socket.heartbeat()


def texts_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames]


def assert_once_in_order(frames: list[dict[str, Any]], texts: list[str]) -> None:
    ids = [int(f["message_id"]) for f in frames]
    assert ids == sorted(set(ids)), "ids not strictly increasing"
    assert texts_of(frames) == texts


@pytest.fixture
def dev_stack(tmp_path: Path) -> Any:
    data_dir = tmp_path / "soak"
    ports = [free_port() for _ in range(3)]
    dev = start_dev(
        data_dir,
        *ports,
        PARLEY_SEND_RATE_PER_S="100000",
        PARLEY_SEND_BURST="100000",
        PARLEY_ARGON2_TIME_COST="1",
        PARLEY_ARGON2_MEMORY_KIB="8192",
        PARLEY_ARGON2_PARALLELISM="1",
    )
    yield f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws"
    try:
        assert dev.stop(120) == 0
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()


@pytest.mark.timeout(1500)
async def test_fifty_thousand_messages_twenty_thousand_in_one_channel_arrive_once_in_order(
    dev_stack: tuple[str, str],
) -> None:
    # Parley's own heartbeats keep the sockets open (the client library sends no pings of its
    # own: their pongs would time out behind the thousands of frames queued before them).
    async with Api(*dev_stack) as api:
        alice, bob = await api.new_device(), await api.new_device()
        alice_phone = await api.add_device(alice.username, "phone")
        busy = await api.direct(alice, bob.user_id)
        pairs: list[tuple[Login, Login, str]] = []
        for _ in range(QUIET_CHANNELS):
            a, b = await api.new_device(), await api.new_device()
            pairs.append((a, b, await api.direct(a, b.user_id)))

        sender = await api.connect(alice)
        watchers = [await api.connect(alice_phone), await api.connect(bob)]
        quiet = [(await api.connect(a), await api.connect(b), ch) for a, b, ch in pairs]

        busy_texts = [f"busy {i}" for i in range(BUSY)]
        quiet_texts = [f"quiet {i}" for i in range(PER_QUIET)]
        beating = asyncio.create_task(  # noqa: RUF006 (cancelled at the end)
            heartbeat([sender, *watchers, *(x for s, r, _ in quiet for x in (s, r))])
        )
        # Receivers read while the senders send: a socket that stops reading is disconnected.
        readers = [
            *(asyncio.create_task(w.collect_messages(busy, BUSY, DEADLINE_S)) for w in watchers),
            *(
                asyncio.create_task(r.collect_messages(ch, PER_QUIET, DEADLINE_S))
                for _, r, ch in quiet
            ),
        ]
        await asyncio.wait_for(
            asyncio.gather(
                pump(sender, busy, busy_texts),
                *(pump(s, ch, quiet_texts) for s, _, ch in quiet),
            ),
            DEADLINE_S,
        )

        # Every device of every member, the sender's own included, got each message once.
        await asyncio.gather(*readers)
        await sender.collect_messages(busy, BUSY, timeout_s=DEADLINE_S)
        for s, _, ch in quiet:
            await s.collect_messages(ch, PER_QUIET, timeout_s=DEADLINE_S)
        # A late duplicate would come before the mark.
        await asyncio.gather(
            marked(sender, busy, *watchers), *(marked(s, ch, r) for s, r, ch in quiet)
        )
        for socket in [sender, *watchers]:
            assert_once_in_order(before_mark(socket, busy), busy_texts)
        for s, r, ch in quiet:
            assert_once_in_order(before_mark(s, ch), quiet_texts)
            assert_once_in_order(before_mark(r, ch), quiet_texts)
            assert r.messages(ch) == s.messages(ch)
        delivered = watchers[1].messages(busy)  # the mark last

        # History holds all of them with the ids delivered, and sync serves the second half.
        history = await api.all_history(bob, busy)
        assert [(m["message_id"], m["text"]) for m in history] == [
            (m["message_id"], m["text"]) for m in delivered
        ]
        half = delivered[BUSY // 2 - 1]["message_id"]
        resumed = await api.connect(bob, cursors={busy: half})
        assert_once_in_order(resumed.messages(busy), [*busy_texts[BUSY // 2 :], MARK])

        # Still answering: a new message after the load reaches everyone.
        await sender.send_message(busy, "after the soak")
        for socket in [*watchers, resumed]:
            got = await socket.collect_messages(busy, len(socket.messages(busy)) + 1, timeout_s=30)
            assert got[-1]["text"] == "after the soak"
        assert (await api.healthz())["status"] == "ok"
        beating.cancel()
