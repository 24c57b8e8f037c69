"""One client process that both sends and receives (so send and receive clocks agree):
the sockets of the latency and throughput scenarios, the delivery tracker, and the pacing loop.

Pacing schedules send i at `start + i / rate` and every latency is measured from that intended
time, not from when the send actually went out, so a stalled client or server cannot hide
queueing delay (no coordinated omission)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import orjson
import psutil

from bench.harness import histograms
from bench.harness.histograms import Histogram
from bench.harness.pacing import Pacer
from bench.harness.progress import bar as progress_bar
from bench.harness.results import Connects, LoadRow
from bench.harness.workers import Sockets
from parley_client import Login, Session, SessionError, encode_frame

CDF_POINTS = 300
TEXT = "bench " + "lorem ipsum dolor sit amet " * 3  # ~90 characters, a typical chat line


@dataclass(eq=False)
class Run:
    """One paced load while it runs: its row, whose counts the tracker fills in as frames
    arrive, and its samples as plain lists (an append is cheap in the receive path), which go
    into histograms once it is over."""

    row: LoadRow
    count: int
    latencies_us: list[int] = field(default_factory=list)
    accept_us: list[int] = field(default_factory=list)
    tenths: list[int] | None = None
    """With `keep_tenths`: beside each latency, the tenth of the planned sends it belongs to."""
    accept_tenths: list[int] | None = None
    """The same beside each `accepted` latency."""
    latency: Histogram = None

    def tenth(self, seq: int) -> int:
        """The tenth of the planned sends that send `seq` belongs to."""
        return seq * 10 // self.count


@dataclass
class Pending:
    t0: int
    expected: int
    got: int
    run: Run
    seq: int


class Tracker:
    """Matches `message` frames to the sends waiting for them."""

    def __init__(self) -> None:
        self.pending: dict[str, Pending] = {}
        self.awaiting_accept: dict[str, Pending] = {}
        """The sends whose `accepted` has not come: the same records as `pending` (which loses
        a send once delivered, `accepted` or not)."""
        self.order: deque[tuple[int, str]] = deque()
        self.deliveries = 0
        self.late = 0
        self.order_violations = 0
        self.last_frame_ns = 0
        self.errors: Counter[str] = Counter()
        self.drained = asyncio.Event()

    def expect(self, cmid: str, t0: int, expected: int, run: Run, seq: int) -> None:
        self.pending[cmid] = self.awaiting_accept[cmid] = Pending(t0, expected, 0, run, seq)
        self.order.append((t0, cmid))
        run.row.expected_deliveries += expected

    def oldest_pending_age_ns(self, now: int) -> int:
        while self.order and self.order[0][1] not in self.pending:
            self.order.popleft()
        return now - self.order[0][0] if self.order else 0

    def on_frame(self, raw: str | bytes, device_id: str, last_seen: dict[str, int]) -> None:
        """A frame on the socket of `device_id`; `last_seen` is that socket's newest message
        id by channel, for the order check."""
        now = time.monotonic_ns()
        self.last_frame_ns = now
        frame = orjson.loads(raw)
        kind = frame.get("type")
        if kind == "message":
            channel_id = frame["channel_id"]
            message_id = int(frame["message_id"])
            if message_id <= last_seen.get(channel_id, 0):
                self.order_violations += 1
            else:
                last_seen[channel_id] = message_id
            if frame.get("sender_device_id") == device_id:
                return  # the sender's own echo
            cmid = frame.get("client_msg_id")
            pending = self.pending.get(cmid) if isinstance(cmid, str) else None
            if pending is None:
                self.late += 1
                return
            run = pending.run
            run.latencies_us.append((now - pending.t0) // 1000)
            if run.tenths is not None:
                run.tenths.append(run.tenth(pending.seq))
            run.row.delivered += 1
            self.deliveries += 1
            pending.got += 1
            if pending.got >= pending.expected:
                del self.pending[cmid]
                if not self.pending:
                    self.drained.set()
        elif kind == "accepted":
            sent = self.awaiting_accept.pop(frame.get("client_msg_id"), None)
            if sent is not None:
                run = sent.run
                run.accept_us.append((now - sent.t0) // 1000)
                if run.accept_tenths is not None:
                    run.accept_tenths.append(run.tenth(sent.seq))
        elif kind == "error":
            code = str(frame.get("code"))
            self.errors[code] += 1
            ref = frame.get("ref")
            if isinstance(ref, str):
                pending = self.pending.pop(ref, None)
                self.awaiting_accept.pop(ref, None)
                if pending is not None:
                    pending.run.row.errors[code] += 1
                    pending.run.row.missing += pending.expected - pending.got
                    if not self.pending:
                        self.drained.set()

    def settle(self, run: Run) -> None:
        """The run is over: whatever did not arrive is missing; later arrivals count as late."""
        for cmid, pending in list(self.pending.items()):
            if pending.run is run:
                run.row.missing += pending.expected - pending.got
                del self.pending[cmid]
        for cmid, sent in list(self.awaiting_accept.items()):
            if sent.run is run:
                run.row.unaccepted += 1
                del self.awaiting_accept[cmid]


CursorSource = Callable[[Login], Awaitable[dict[str, str]]]


class Fleet(Sockets[str]):
    """One socket per user (by user id) in this process, whose frames feed the tracker."""

    def __init__(self, url: str, tracker: Tracker, cursors: CursorSource) -> None:
        super().__init__(url)
        self.tracker = tracker
        self.cursors = cursors
        self.users: dict[str, Login] = {}
        """Whose sockets are kept: one not in `held` has closed, and `ensure` reopens it."""
        self.last_seen: dict[str, dict[str, int]] = {}
        self.reconnects = 0

    async def ensure(self, users: Iterable[Login], concurrency: int = 16) -> None:
        """Every user has an open, synced socket (reopening those that closed)."""
        held = self.held
        missing = [u for u in users if u.user_id not in held or not held[u.user_id].session.is_open]
        if not missing:
            return
        semaphore = asyncio.Semaphore(concurrency)
        with progress_bar(len(missing), "sockets", "sock") as bar:

            async def one(user: Login) -> None:
                async with semaphore:
                    if user.user_id in self.users:
                        self.reconnects += 1
                    await self.close([user.user_id])
                    connects = Connects()
                    deadline = time.monotonic() + 300
                    cursors = await self.cursors(user)
                    session = await self.connect(
                        user.token, cursors, connects, deadline, 5, lambda n: 0.5 * n
                    )
                if session is None:
                    raise RuntimeError(f"no socket for {user.username}: {connects.error_samples}")
                self.users[user.user_id] = user
                self.last_seen[user.user_id] = {}
                self.keep(user.user_id, session)
                bar.update(1)

            await asyncio.gather(*(one(u) for u in missing))

    def on_frame(self, key: str, raw: str | bytes) -> None:
        self.tracker.on_frame(raw, self.users[key].device_id, self.last_seen[key])

    async def keep_only(self, users: list[Login]) -> None:
        """Close the sockets of every other user (the gateway drops what it queued for them)."""
        keep = {u.user_id for u in users}
        self.users = {k: u for k, u in self.users.items() if k in keep}
        await self.close([k for k in self.held if k not in keep])

    async def close_all(self) -> int:
        self.users.clear()
        return await super().close_all()


@dataclass(frozen=True)
class Target:
    """Who sends, into which channel, and how many sockets should receive it."""

    sender: Login
    channel_id: str
    expected: int


_run_ids = itertools.count()


async def paced_load(
    fleet: Fleet,
    targets: list[Target],
    rate: float,
    duration_s: float,
    label: str,
    scenario: str,
    *,
    drain_s: float,
    abort_after_s: float,
    keep_tenths: bool = False,
) -> Run:
    """Send `rate` msgs/s for `duration_s` round-robin over `targets`, then wait up to
    `drain_s` for the deliveries. Stops early (and says so) once the oldest undelivered
    message is `abort_after_s` old: the stack is saturated and more load only queues."""
    tracker = fleet.tracker
    count = max(int(rate * duration_s), 1)
    run = Run(
        LoadRow(scenario, rate),
        count,
        tenths=[] if keep_tenths else None,
        accept_tenths=[] if keep_tenths else None,
    )
    row = run.row
    tag = f"{uuid.uuid4().hex[:6]}{next(_run_ids)}-"
    abort_ns = int(abort_after_s * 1e9)
    await fleet.ensure({t.sender for t in targets})  # a socket may have closed since
    sends: list[tuple[Session, str, int]] = [
        (fleet.held[t.sender.user_id].session, t.channel_id, t.expected) for t in targets
    ]
    me = psutil.Process()
    cpu0 = me.cpu_times()
    pacer = Pacer(rate, 50_000_000)
    start = pacer.start
    deliveries0 = tracker.deliveries
    sent = 0
    next_check = start
    with progress_bar(count, label, "msg") as bar:
        last_bar = 0
        while sent < count:
            intended = await pacer.wait(sent)
            session, channel_id, expected = sends[sent % len(sends)]
            cmid = f"{tag}{sent}"
            tracker.expect(cmid, intended, expected, run, sent)
            text = encode_frame(
                {"type": "send", "client_msg_id": cmid, "channel_id": channel_id, "text": TEXT}
            )
            try:
                await session.send_raw(text)
            except SessionError:
                row.send_failed += 1
                pending = tracker.pending.pop(cmid, None)
                tracker.awaiting_accept.pop(cmid, None)
                if pending is not None:
                    row.missing += pending.expected
            now = time.monotonic_ns()
            sent += 1
            if now >= next_check:
                next_check = now + 100_000_000
                if tracker.oldest_pending_age_ns(now) > abort_ns:
                    row.aborted = (
                        f"saturated: a message undelivered after {abort_after_s:g}s "
                        f"at {sent}/{count} sends"
                    )
                    break
                bar.update(sent - last_bar)
                last_bar = sent
        bar.update(sent - last_bar)
    window_s = (time.monotonic_ns() - start) / 1e9
    delivered_in_window = tracker.deliveries - deliveries0
    drain_started = time.monotonic()
    if tracker.pending:
        tracker.drained.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tracker.drained.wait(), drain_s)
    drained_s = time.monotonic() - drain_started
    tracker.settle(run)
    cpu1 = me.cpu_times()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    run.latency = histograms.of(run.latencies_us)
    row.sent, row.send_window_s, row.drain_s = sent, round(window_s, 3), round(drained_s, 3)
    row.delivered_per_s = round(delivered_in_window / window_s, 1) if window_s > 0 else None
    row.client_cpu_pct = round(100.0 * used / (window_s + drained_s), 1)
    row.latency_ms = histograms.summary(run.latency)
    row.accept_latency_ms = histograms.summary(histograms.of(run.accept_us))
    row.send_lag_ms = pacer.lag()
    row.cdf_ms = histograms.cdf(run.latency, CDF_POINTS)
    return run


async def quiesce(tracker: Tracker, quiet_s: float, max_s: float) -> float:
    """Wait until no frame arrived for `quiet_s` (a saturated stack keeps delivering a
    backlog after a run); returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        if time.monotonic_ns() - tracker.last_frame_ns > quiet_s * 1e9:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started
