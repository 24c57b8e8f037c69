"""Load and faults for the cluster tests (tests/test_cluster_*.py): senders that each keep
sending into a channel of their own, read by two devices, and the figures of a fault (how long
an election took, how slow the sends got, how many were sent again)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from parley_client import Frame, Login, Session, SessionError
from tests.conftest import Api, before_mark, marked

# A send is answered (`accepted`, or an `internal` error to send again) within this: the
# gateway answers `internal` to a send the broker has not acknowledged within
# `send_answer_timeout_s` (10 s), and the box is shared.
ANSWER_S = 15.0
HEARTBEAT_S = 5.0  # well within the gateway's heartbeat interval (15 s)


@dataclass
class Stream:
    """One sender's socket sending into one direct channel, one message after the other (the
    next once the last is accepted; one refused is sent again with the same id, as the
    protocol says); the reader has a live device, and another that connects later (a sync)."""

    tag: str
    channel: str
    sender: Session
    reader: Login
    live: Session
    spare: Login  # the reader's second device, made before the first send, connected later
    pace_s: float
    accepted: list[str] = field(default_factory=list)
    resent: int = 0
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    sent_at: dict[str, float] = field(default_factory=dict)  # text -> its first send
    arrived_at: dict[str, float] = field(default_factory=dict)  # text -> first on `live`
    syncing: Session | None = None
    failure: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._send_until(stop)
        except BaseException as exc:
            self.failure = exc
            raise

    async def _send_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            text = f"{self.tag}-{len(self.accepted)}"
            started = self.sent_at[text] = time.monotonic()
            while True:
                await self.sender.send_message(self.channel, text, client_msg_id=text)
                # Silence (no answer at all) fails the test with a TimeoutError.
                frame = await self.sender.until(_answers(text), ANSWER_S)
                if frame["type"] == "accepted":
                    break
                assert frame["code"] == "internal", frame
                self.resent += 1
            self.latencies.append((started, time.monotonic() - started))
            self.accepted.append(text)
            await asyncio.sleep(self.pace_s)  # the sender's pace, not a wait for anything

    async def watch(self) -> None:
        """Read the live device's frames as they come, noting when each message arrived
        (the frames stay kept for `check_delivered_once_in_order`)."""
        while True:
            frame = await self.live.next(None)
            if frame["type"] == "message" and frame["channel_id"] == self.channel:
                self.arrived_at.setdefault(frame["text"], time.monotonic())

    def sockets(self) -> list[Session]:
        return [self.sender, self.live] + ([self.syncing] if self.syncing is not None else [])

    async def check_delivered_once_in_order(self, api: Api) -> None:
        """Every accepted message is stored once and reached each device once, in order."""
        devices = [self.live] + ([self.syncing] if self.syncing is not None else [])
        await marked(self.sender, self.channel, *devices)
        named = zip(("sender", "live", "syncing"), (self.sender, *devices), strict=False)
        for name, socket in named:
            got = [m["text"] for m in before_mark(socket, self.channel)]
            assert got == self.accepted, f"{self.tag} {name}: {differences(got, self.accepted)}"
        history = [m["text"] for m in await api.all_history(self.reader, self.channel)][:-1]
        assert history == self.accepted, (
            f"{self.tag} history: {differences(history, self.accepted)}"
        )

    async def connect_spare(self, api: Api) -> None:
        """The reader's second device connects: its sync brings everything sent so far."""
        self.syncing = await api.connect(self.spare)


def differences(got: list[str], expected: list[str]) -> str:
    """What a delivered list of texts has wrong: missing, doubled, out of order."""
    missing = sorted(set(expected) - set(got), key=expected.index)
    doubled = sorted({t for t in got if got.count(t) > 1})
    first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
    return (
        f"{len(got)} got, {len(expected)} expected; missing {missing[:10]}; doubled "
        f"{doubled[:10]}; first difference at {first}: {got[first - 2 : first + 3] if first else ''}"
    )


def _answers(client_msg_id: str) -> Any:
    def answers(frame: Frame) -> bool:
        if frame["type"] == "accepted":
            return bool(frame["client_msg_id"] == client_msg_id)
        return frame["type"] == "error" and frame.get("ref") == client_msg_id

    return answers


async def streams(api: Api, count: int, hot_pace_s: float, pace_s: float) -> list[Stream]:
    """`count` streams; the first (the hot one) sends faster than the others."""
    made = []
    for i in range(count):
        sender, reader = await api.new_device(f"s{i}_"), await api.new_device(f"r{i}_")
        channel = await api.direct(sender, reader.user_id)
        made.append(
            Stream(
                f"c{i}",
                channel,
                await api.connect(sender),
                reader,
                await api.connect(reader),
                await api.add_device(reader.username, "spare"),
                hot_pace_s if i == 0 else pace_s,
            )
        )
    return made


@contextlib.asynccontextmanager
async def sending(load: list[Stream]) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The streams send until the returned `stop` is awaited (a stream's failure fails the
    test there); every socket heartbeats until the block ends (checks included)."""
    done = asyncio.Event()
    tasks = [asyncio.create_task(stream.run(done)) for stream in load]
    # Cancelling a read loses no frame (websockets' recv), so the checks read on after these.
    watching = [asyncio.create_task(stream.watch()) for stream in load]

    async def beat() -> None:
        while True:
            for socket in [s for stream in load for s in stream.sockets()]:
                with contextlib.suppress(SessionError):
                    await socket.heartbeat()
            await asyncio.sleep(HEARTBEAT_S)  # the protocol's cadence

    beating = asyncio.create_task(beat())

    async def unwatch() -> None:
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)

    async def stop() -> None:
        done.set()
        await asyncio.gather(*tasks)
        await unwatch()

    try:
        for stream in load:
            await until_accepted(stream, 10)
        yield stop
    finally:
        done.set()
        beating.cancel()
        await unwatch()
        await asyncio.gather(*tasks, beating, return_exceptions=True)


async def until_accepted(stream: Stream, count: int, timeout_s: float = 120.0) -> None:
    """Until the stream has `count` more messages accepted than now."""
    target = len(stream.accepted) + count
    deadline = time.monotonic() + timeout_s
    while len(stream.accepted) < target:
        if stream.failure is not None:
            raise AssertionError(f"{stream.tag} failed") from stream.failure
        assert time.monotonic() < deadline, f"{stream.tag} stalled at {len(stream.accepted)}"
        await asyncio.sleep(0.05)  # polling the stream, within the deadline


async def partitions(bootstrap: str, topic: str) -> dict[int, dict[str, Any]]:
    """The topic's partitions as the cluster describes them now: number -> metadata (`leader`,
    `replicas`, `isr`). Asked again while the brokers asked do not answer."""
    deadline = time.monotonic() + 60
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            (described,) = await admin.describe_topics([topic])
            return {p["partition"]: p for p in described["partitions"]}
        except Exception:
            assert time.monotonic() < deadline, f"no metadata of {topic} for 60 s"
            await asyncio.sleep(0.2)  # the next try, within the deadline
        finally:
            await admin.close()


async def new_leader(bootstrap: str, topic: str, partition: int, old: int) -> int:
    """Until a broker other than `old` leads the partition; returns it."""
    deadline = time.monotonic() + 120
    while True:
        leader = int((await partitions(bootstrap, topic))[partition]["leader"])
        if leader not in (old, -1):
            return leader
        assert time.monotonic() < deadline, f"{topic}/{partition} still led by {old}"
        await asyncio.sleep(0.1)  # polling the metadata, within the deadline


async def all_in_sync(bootstrap: str, topics: list[str], replicas: int) -> None:
    """Until every partition of the topics has all its replicas in sync (a broker back has
    caught up)."""
    deadline = time.monotonic() + 180
    for topic in topics:
        while any(len(p["isr"]) < replicas for p in (await partitions(bootstrap, topic)).values()):
            assert time.monotonic() < deadline, f"{topic} not back in sync after 180 s"
            await asyncio.sleep(0.2)  # polling the metadata, within the deadline


def spike(all_streams: list[Stream], since: float, until: float) -> dict[str, float]:
    """Send latencies (seconds: sent to `accepted`) and delivery latencies (sent to arrived on
    the reader's live device) of the messages first sent in [since, until], against those
    before: the pause a user sees."""
    during = [s for st in all_streams for at, s in st.latencies if since <= at <= until]
    before = [s for st in all_streams for at, s in st.latencies if at < since]
    delivered = [
        (at, st.arrived_at[text] - at)
        for st in all_streams
        for text, at in st.sent_at.items()
        if text in st.arrived_at
    ]
    delivered_during = [s for at, s in delivered if since <= at <= until]
    delivered_before = [s for at, s in delivered if at < since]
    return {
        "median_before_s": _median(before),
        "max_during_s": round(max(during), 3) if during else 0.0,
        "sends_during": len(during),
        "delivery_median_before_s": _median(delivered_before),
        "delivery_max_during_s": round(max(delivered_during), 3) if delivered_during else 0.0,
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0
