"""The presence scenario's client side: a worker whose sockets each watch a list of users
(`presence.subscribe` once synced) and that takes users offline and back online on a shared
schedule, timing every `presence` frame against the change that caused it.

Clocks: the schedule is in `time.monotonic_ns()`, which on Linux is one clock for every process
on the machine, so a frame received by one worker is timed against a close or reconnect made
by another."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import ClassVar

import orjson

from bench.harness.results import Connects
from bench.harness.workers import Slot, StatsReply, Worker
from parley_client import Session

Schedule = dict[str, tuple[int, int]]
"""user_id -> (intended close, intended reconnect), monotonic ns."""


async def _sleep_until(at_ns: int) -> None:
    await asyncio.sleep(max(at_ns - time.monotonic_ns(), 0) / 1e9)


@dataclass
class PresenceStats(StatsReply):
    snapshot_frames: int
    change_frames: int
    error_frames: Counter[str]


@dataclass
class ChurnReply:
    """What the sockets of one worker saw during one churn step."""

    per_second: Counter[int] = field(default_factory=Counter)
    """Change frames by second since the step's start."""
    offline_ns: list[int] = field(default_factory=list)
    """Each offline frame, after its timeout."""
    online_ns: list[int] = field(default_factory=list)
    """Each online frame, after its reconnect."""
    unscheduled: int = 0
    steady_received: int = 0
    steady_expected: int = 0
    reconnects: Connects = field(default_factory=Connects)
    held: int = 0


@dataclass
class _Step:
    schedule: Schedule
    timeout_ns: int
    start_ns: int
    out: ChurnReply

    def on_change(self, watcher: Slot, user_id: str, status: str, now: int) -> None:
        out = self.out
        out.per_second[(now - self.start_ns) // 1_000_000_000] += 1
        times = self.schedule.get(user_id)
        # A change before the scheduled one is not its notification: a backlog from an
        # earlier step, or a change nobody scheduled.
        if times is None or now < (times[0] if status == "offline" else times[1]):
            out.unscheduled += 1
            return
        if status == "offline":
            # Offline is due one timeout after the close (the disconnect is the last sighting).
            out.offline_ns.append(now - (times[0] + self.timeout_ns))
        else:
            out.online_ns.append(now - times[1])
        if watcher.user_id not in self.schedule:
            out.steady_received += 1


class PresenceWorker(Worker):
    COMMANDS: ClassVar[frozenset[str]] = Worker.COMMANDS | {"churn"}

    def __init__(self, url: str, slots: list[Slot], progress: Synchronized[int]) -> None:
        super().__init__(url, slots, progress)
        self.slot_of = {s.index: s for s in slots}
        self.snapshot_frames = 0
        self.change_frames = 0
        self.error_frames: Counter[str] = Counter()
        self.first_seen: dict[int, set[str]] = {}
        self.step: _Step | None = None

    async def opened(self, key: int, session: Session) -> None:
        watch = self.slot_of[key].watch
        if watch:
            self.first_seen[key] = set()
            await session.subscribe_presence(watch)

    def on_frame(self, key: int, raw: str | bytes) -> None:
        self.frames_after_sync += 1
        text = raw if isinstance(raw, str) else raw.decode()
        if '"presence"' not in text and '"error"' not in text:
            return
        now = time.monotonic_ns()
        frame = orjson.loads(text)
        kind = frame.get("type")
        if kind == "error":
            self.error_frames[str(frame.get("code"))] += 1
            return
        if kind != "presence":
            return
        user_id = str(frame["user_id"])
        # The first frame per watched user on a socket is the subscribe's snapshot; later
        # ones are change notifications.
        seen = self.first_seen.setdefault(key, set())
        if user_id not in seen:
            seen.add(user_id)
            self.snapshot_frames += 1
            return
        self.change_frames += 1
        if self.step is not None:
            self.step.on_change(self.slot_of[key], user_id, str(frame["status"]), now)

    async def stats(self) -> PresenceStats:
        return PresenceStats(
            len(self.held),
            self.closes.copy(),
            self.frames_after_sync,
            self.snapshot_frames,
            self.change_frames,
            self.error_frames.copy(),
        )

    async def churn(
        self, schedule: Schedule, timeout_s: float, start_ns: int, until_ns: int
    ) -> ChurnReply:
        """Close the sockets of each scheduled user at its close time and reconnect them at
        its reconnect time; record every change frame until `until_ns`."""
        out = ChurnReply()
        self.step = _Step(schedule, int(timeout_s * 1e9), start_ns, out)

        async def cycle(slot: Slot) -> None:
            close_ns, reopen_ns = schedule[slot.user_id]
            await _sleep_until(close_ns)
            await self.close([slot.index])
            await _sleep_until(reopen_ns)
            session = await self.connect(slot.token, slot.cursors, out.reconnects, until_ns / 1e9)
            if session is not None:
                self.keep(slot.index, session)

        try:
            await asyncio.gather(*(cycle(s) for s in self.slots if s.user_id in schedule))
            await _sleep_until(until_ns)
        finally:
            self.step = None
        churned = set(schedule)
        # A socket whose user did not churn should see each churned user it watches go
        # offline and come back: two frames.
        out.steady_expected = sum(
            2 * len(churned.intersection(s.watch))
            for s in self.slots
            if s.user_id not in churned and s.index in self.held
        )
        out.held = len(self.held)
        return out
