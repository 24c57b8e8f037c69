"""The per-socket outbox (gateway/outbox.py): order, the bound that closes slow sockets, the
sync waiting for room, and a dead socket's frames dropped quietly."""

from __future__ import annotations

import asyncio
import sys

from gateway.outbox import Budget, Outbox


class Peer:
    """The socket's write side: records frames, and can stall (a client that stops reading)."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.broken = False
        self.taken: asyncio.Queue[str] = asyncio.Queue()  # each frame the writer handed over

    async def send(self, text: str) -> None:
        self.taken.put_nowait(text)
        await self.reading.wait()
        if self.broken:
            raise ConnectionError("gone")
        self.written.append(text)


async def test_frames_are_written_in_order_and_the_writer_ends_when_empty() -> None:
    peer = Peer()
    outbox = Outbox(peer.send, limit=10, byte_limit=1 << 20, budget=Budget(1 << 30))
    assert all(outbox.offer(f"f{i}") for i in range(5))
    await outbox.drain(5)
    assert peer.written == [f"f{i}" for i in range(5)]
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert outbox.offer("again")
    await outbox.drain(5)
    assert peer.written[-1] == "again"


async def test_a_stalled_peer_fills_the_outbox_and_then_frames_are_refused() -> None:
    peer = Peer()
    peer.reading.clear()
    outbox = Outbox(peer.send, limit=3, byte_limit=1 << 20, budget=Budget(1 << 30))
    assert outbox.offer("in flight")
    assert await peer.taken.get() == "in flight"  # the writer took it and waits on the peer
    assert [outbox.offer(f"q{i}") for i in range(4)] == [True, True, True, False]
    peer.reading.set()
    await outbox.drain(5)
    assert peer.written == ["in flight", "q0", "q1", "q2"]


async def test_put_waits_for_room_instead_of_refusing() -> None:
    peer = Peer()
    peer.reading.clear()
    outbox = Outbox(peer.send, limit=2, byte_limit=1 << 20, budget=Budget(1 << 30))
    assert outbox.offer("a")
    assert await peer.taken.get() == "a"  # in flight, waiting on the peer
    assert outbox.offer("b") and outbox.offer("c")  # they fill the outbox
    waiting = asyncio.create_task(outbox.put("d"))
    # A frame offered now is refused: the outbox is full, so `put` is waiting for room (an
    # `offer` answers from the same state `put` waits on, with no time involved).
    assert not outbox.offer("probe")
    assert not waiting.done()
    peer.reading.set()
    await asyncio.wait_for(waiting, 5)
    await outbox.drain(5)
    assert peer.written == ["a", "b", "c", "d"]


async def test_after_the_socket_is_gone_frames_are_dropped_quietly() -> None:
    peer = Peer()
    peer.broken = True
    outbox = Outbox(peer.send, limit=2, byte_limit=1 << 20, budget=Budget(1 << 30))
    outbox.offer("lost")
    await outbox.drain(5)
    assert all(outbox.offer(f"x{i}") for i in range(10))  # never "too slow": just gone
    await outbox.drain(5)
    assert peer.written == []


async def test_stop_drops_what_is_queued() -> None:
    peer = Peer()
    peer.reading.clear()
    outbox = Outbox(peer.send, limit=5, byte_limit=1 << 20, budget=Budget(1 << 30))
    for text in ("a", "b", "c"):
        outbox.offer(text)
    assert await peer.taken.get() == "a"  # in flight, waiting on the peer
    await outbox.stop()
    peer.reading.set()
    # The writer is gone: nothing it held or queued is written, even once the peer reads. A
    # frame written through a new outbox on the same peer comes first, so none came before.
    after = Outbox(peer.send, limit=5, byte_limit=1 << 20, budget=Budget(1 << 30))
    assert after.offer("marker")
    await after.drain(5)
    assert peer.written == ["marker"]


async def test_a_frame_with_nothing_waiting_is_written_at_once_and_order_holds() -> None:
    peer = Peer()
    taking = True
    direct: list[str] = []

    def write_now(text: str) -> bool:
        if taking:
            direct.append(text)
        return taking

    outbox = Outbox(
        peer.send, limit=10, byte_limit=1 << 20, budget=Budget(1 << 30), write_now=write_now
    )
    assert outbox.offer("now")
    assert direct == ["now"] and not [
        t for t in asyncio.all_tasks() if t is not asyncio.current_task()
    ]
    # The transport pauses: frames queue, and later ones queue behind them even once it takes
    # data again, until the buffer is empty.
    taking = False
    peer.reading.clear()
    assert outbox.offer("q0")
    taking = True
    assert outbox.offer("q1")
    assert direct == ["now"]
    peer.reading.set()
    await outbox.drain(5)
    assert peer.written == ["q0", "q1"]
    assert outbox.offer("now again")
    assert direct == ["now", "now again"]


async def test_bytes_are_bounded_per_socket_and_over_the_gateway_and_given_back_when_written() -> (
    None
):
    peer = Peer()
    peer.reading.clear()
    budget = Budget(1 << 30)
    frame = "x" * 1000
    size = sys.getsizeof(frame)
    outbox = Outbox(peer.send, limit=1000, byte_limit=3 * size, budget=budget)
    assert outbox.offer(frame)
    assert await peer.taken.get() == frame  # the writer took it: it no longer counts
    assert [outbox.offer(frame) for _ in range(4)] == [True, True, True, False]
    assert budget.queued == 3 * size
    # The gateway's total refuses a socket whose own budget still has room.
    other = Outbox(Peer().send, limit=1000, byte_limit=1 << 20, budget=Budget(2 * size))
    assert [other.offer(frame) for _ in range(3)] == [True, True, False]
    peer.reading.set()
    await outbox.drain(5)
    assert budget.queued == 0 and len(peer.written) == 4
    await other.stop()
