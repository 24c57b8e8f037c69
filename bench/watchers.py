"""The presence scenario's client side: a worker whose sockets each watch a list of users
(`presence.subscribe` once synced) and that takes users offline and back online on a shared
schedule, timing every `presence` frame against the change that caused it.

Clocks: the schedule is in `time.monotonic_ns()`, which on Linux is one clock for every process
on the machine, so a frame received by one worker is timed against a close or reconnect made
by another."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import ClassVar

import orjson

from bench import histograms
from bench.workers import Slot, StatsReply, Worker
from parley_client import Session

Schedule = dict[str, tuple[int, int]]
"""user_id -> (intended close, intended reconnect), monotonic ns."""


async def _sleep_until(at_ns: int) -> None:
    await asyncio.sleep(max(at_ns - time.monotonic_ns(), 0) / 1e9)


@dataclass(frozen=True)
class PresenceStats(StatsReply):
    snapshot_frames: int
    change_frames: int
    error_frames: dict[str, int]


@dataclass(frozen=True)
class ChurnReply:
    per_second: dict[int, int]
    offline: bytes
    """An encoded histogram (bench.histograms) of offline frames after their timeout."""
    online: bytes
    """An encoded histogram of online frames after their reconnect."""
    unscheduled: int
    steady_received: int
    steady_expected: int
    reconnect_failed: int
    reconnect_errors: dict[str, int]
    error_samples: dict[str, str]
    held: int


@dataclass
class _Step:
    """What the sockets of one worker saw during one churn step."""

    schedule: Schedule
    timeout_ns: int
    start_ns: int
    per_second: dict[int, int] = field(default_factory=dict)
    offline_ns: list[int] = field(default_factory=list)
    online_ns: list[int] = field(default_factory=list)
    unscheduled: int = 0
    steady_received: int = 0

    def on_change(self, watcher: Slot, user_id: str, status: str, now: int) -> None:
        second = (now - self.start_ns) // 1_000_000_000
        self.per_second[second] = self.per_second.get(second, 0) + 1
        times = self.schedule.get(user_id)
        # A change before the scheduled one is not its notification: a backlog from an
        # earlier step, or a change nobody scheduled.
        if times is None or now < (times[0] if status == "offline" else times[1]):
            self.unscheduled += 1
            return
        if status == "offline":
            # Offline is due one timeout after the close (the disconnect is the last sighting).
            self.offline_ns.append(now - (times[0] + self.timeout_ns))
        else:
            self.online_ns.append(now - times[1])
        if watcher.user_id not in self.schedule:
            self.steady_received += 1


@dataclass
class PresenceWorker(Worker):
    COMMANDS: ClassVar[frozenset[str]] = Worker.COMMANDS | {"churn"}

    snapshot_frames: int = 0
    change_frames: int = 0
    error_frames: dict[str, int] = field(default_factory=dict)
    first_seen: dict[int, set[str]] = field(default_factory=dict)
    step: _Step | None = None

    async def _opened(self, slot: Slot, session: Session) -> None:
        if slot.watch:
            self.first_seen[slot.index] = set()
            await session.subscribe_presence(slot.watch)

    def _on_frame(self, slot: Slot, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode()
        if '"presence"' not in text and '"error"' not in text:
            return
        now = time.monotonic_ns()
        frame = orjson.loads(text)
        kind = frame.get("type")
        if kind == "error":
            code = str(frame.get("code"))
            self.error_frames[code] = self.error_frames.get(code, 0) + 1
            return
        if kind != "presence":
            return
        user_id = str(frame["user_id"])
        # The first frame per watched user on a socket is the subscribe's snapshot; later
        # ones are change notifications.
        seen = self.first_seen.setdefault(slot.index, set())
        if user_id not in seen:
            seen.add(user_id)
            self.snapshot_frames += 1
            return
        self.change_frames += 1
        if self.step is not None:
            self.step.on_change(slot, user_id, str(frame["status"]), now)

    async def stats(self) -> PresenceStats:
        base = await super().stats()
        return PresenceStats(
            base.held,
            base.closes,
            base.frames_after_sync,
            self.snapshot_frames,
            self.change_frames,
            dict(self.error_frames),
        )

    async def churn(
        self, schedule: Schedule, timeout_s: float, start_ns: int, until_ns: int
    ) -> ChurnReply:
        """Close the sockets of each scheduled user at its close time and reconnect them at
        its reconnect time; record every change frame until `until_ns`."""
        step = _Step(schedule, int(timeout_s * 1e9), start_ns)
        self.step = step
        errors: dict[str, int] = {}
        failed = 0

        async def cycle(slot: Slot) -> None:
            nonlocal failed
            close_ns, reopen_ns = schedule[slot.user_id]
            await _sleep_until(close_ns)
            held = self.held.pop(slot.index, None)
            if held is not None:
                await self._close([held])
            await _sleep_until(reopen_ns)
            for attempt in range(4):
                remaining = (until_ns - time.monotonic_ns()) / 1e9
                if remaining <= 1:
                    break
                session = await self._open(slot, remaining, errors)
                if session is None:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self._keep(slot, session)
                return
            failed += 1

        try:
            await asyncio.gather(*(cycle(s) for s in self.slots if s.user_id in schedule))
            await _sleep_until(until_ns)
        finally:
            self.step = None
        churned = set(schedule)
        # A socket whose user did not churn should see each churned user it watches go
        # offline and come back: two frames.
        expected = sum(
            2 * len(churned.intersection(s.watch))
            for s in self.slots
            if s.user_id not in churned and s.index in self.held
        )
        return ChurnReply(
            per_second=step.per_second,
            offline=histograms.encode(histograms.of_ns(step.offline_ns)),
            online=histograms.encode(histograms.of_ns(step.online_ns)),
            unscheduled=step.unscheduled,
            steady_received=step.steady_received,
            steady_expected=expected,
            reconnect_failed=failed,
            reconnect_errors=errors,
            error_samples=dict(self.error_samples),
            held=len(self.held),
        )
