"""The presence scenario (issue #4): presence events/s the processor handles, and change
notifications/s to sockets that each watch `presence_watch` friends (groups of friends, a
churn of users going offline and back, and a flood of heartbeats produced straight to the
topic for the processor's ceiling). The processor's progress is read from outside: its
consumer group's committed offsets and its `/metrics`. Described once, in bench/README.md
("What each scenario measures", 8)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness import cpu, histograms
from bench.harness.admin import partition_count
from bench.harness.context import Context, fetch_cursors
from bench.harness.progress import bar as progress_bar
from bench.harness.results import (
    ChurnStep,
    Flood,
    PresenceConnect,
    PresenceResults,
    ProcessorWindow,
    Subscribed,
)
from bench.harness.workers import Slot, WorkerPool
from bench.scenarios.watchers import PresenceWorker, Schedule
from parley_client import ApiError, Client, Login

EVENTS_TOPIC = "parley.presence.v1"
PROCESSOR_GROUP = "parley-processor"  # the processors' consumer group (PARLEY_PROCESSOR_ID)
CHANGES_METRIC = "parley_processor_presence_changes_total"
RECONNECT_AFTER_S = 2.5
"""After the timeout, before the reconnect: the processor's timer looks every 0.5 s."""
DRAIN_S = 5.0
CDF_POINTS = 300


class ProcessorProbe:
    """How far the processors' consumer group has got on the presence topic, without joining
    the group (no subscription, no commits)."""

    def __init__(self, bootstrap: str, processor_url: str | None) -> None:
        self.processor = (
            Client(processor_url, timeout_s=2, trust_env=False) if processor_url else None
        )
        self._bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=PROCESSOR_GROUP,
            enable_auto_commit=False,
            client_id="parley-bench-presence",
        )
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._consumer.start()
        count = await partition_count(self._bootstrap, EVENTS_TOPIC)
        if count < 1:
            raise RuntimeError(f"topic {EVENTS_TOPIC} not found")
        self._partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(count)]

    async def stop(self) -> None:
        await self._consumer.stop()
        if self.processor is not None:
            await self.processor.aclose()

    async def committed(self) -> int:
        """Events of the topic the processors have handled and committed, all partitions."""
        offsets = await asyncio.gather(*(self._consumer.committed(tp) for tp in self._partitions))
        return sum(int(o or 0) for o in offsets)

    async def lag(self) -> int:
        """Events not yet committed, all partitions."""
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self._partitions)
        return max(sum(ends.values()) - await self.committed(), 0)

    async def changes(self) -> float | None:
        """The processor's presence-changes counter (None if /metrics does not answer)."""
        if self.processor is None:
            return None
        try:
            text = await self.processor.metrics()
        except (ApiError, httpx.HTTPError):
            return None
        for line in text.splitlines():
            if line.startswith(CHANGES_METRIC + " "):
                return float(line.split()[1])
        return None


class Window:
    """Events handled, changes decided and CPU used between `open` and `close`."""

    def __init__(self, ctx: Context, probe: ProcessorProbe) -> None:
        self.ctx = ctx
        self.probe = probe

    async def open(self) -> None:
        self.t0 = time.monotonic()
        self.committed0 = await self.probe.committed()
        self.changes0 = await self.probe.changes()
        self.cpu0 = cpu.snapshot(self.ctx.stack)

    async def close(self) -> ProcessorWindow:
        seconds = time.monotonic() - self.t0
        handled = await self.probe.committed() - self.committed0
        changes, changes0 = await self.probe.changes(), self.changes0
        changed = changes - changes0 if changes is not None and changes0 is not None else None
        return ProcessorWindow(
            seconds=round(seconds, 2),
            events_handled=handled,
            events_per_s=round(handled / seconds, 1),
            lag_after=await self.probe.lag(),
            changes=int(changed) if changed is not None else None,
            changes_per_s=round(changed / seconds, 1) if changed is not None else None,
            cpu_cores=cpu.used(self.cpu0, cpu.snapshot(self.ctx.stack)).cores(),
            loadavg_1m=round(os.getloadavg()[0], 2),
        )


def _slots(
    ctx: Context, groups: list[list[Login]], cursors: dict[str, dict[str, str]]
) -> list[Slot]:
    per_user = ctx.cfg.presence_sockets_per_user
    slots: list[Slot] = []
    for group in groups:
        for user in group:
            watch = tuple(m.user_id for m in group if m.user_id != user.user_id)
            for _ in range(per_user):
                slots.append(
                    Slot(len(slots), user.token, cursors[user.user_id], 0, user.user_id, watch)
                )
    return slots


async def _make_groups(ctx: Context) -> list[list[Login]]:
    cfg = ctx.cfg
    size = cfg.presence_group_size()
    users = ctx.users[: cfg.presence_group_count() * size]
    groups = [users[i : i + size] for i in range(0, len(users), size)]
    await asyncio.gather(*(ctx.group(g, f"presence {n}") for n, g in enumerate(groups)))
    # Sharing a group does not grant presence: the members of each group are friends too.
    for group in groups:
        await ctx.befriend_all(group)
    return groups


async def _await_snapshots(pool: WorkerPool, expected: int, max_s: float) -> Subscribed:
    """Wait until every socket got its subscribe's snapshot (one frame per watched user)."""
    started = time.monotonic()
    stats = await pool.call(PresenceWorker.stats)
    while stats.snapshot_frames < expected and time.monotonic() - started < max_s:
        await asyncio.sleep(0.5)
        stats = await pool.call(PresenceWorker.stats)
    return Subscribed(
        stats.snapshot_frames, expected, round(time.monotonic() - started, 2), stats.error_frames
    )


async def _churn_step(
    ctx: Context, pool: WorkerPool, probe: ProcessorProbe, users: list[Login], rate: float
) -> ChurnStep:
    cfg = ctx.cfg
    timeout_ns = int(cfg.presence_timeout_s * 1e9)
    count = min(max(int(rate * cfg.presence_step_s), 1), len(users))
    subjects = random.sample(users, count)
    start = time.monotonic_ns() + 2_000_000_000
    period = 1e9 / rate
    back_ns = timeout_ns + int(RECONNECT_AFTER_S * 1e9)
    schedule: Schedule = {
        u.user_id: (start + int(i * period), start + int(i * period) + back_ns)
        for i, u in enumerate(subjects)
    }
    until = max(t for _, t in schedule.values()) + int(DRAIN_S * 1e9)
    window = Window(ctx, probe)
    await window.open()
    reply = await pool.with_progress(
        count * cfg.presence_sockets_per_user,
        f"presence churn {rate:g} users/s: reconnected",
        pool.call(PresenceWorker.churn, schedule, cfg.presence_timeout_s, start, until),
    )
    processor = await window.close()
    series = [reply.per_second[s] for s in range(max(reply.per_second, default=-1) + 1)]
    # The steady window: both offline frames (from closes) and online frames (reconnects)
    # arrive at the full rate, from the first reconnect to the last close's offline.
    steady_from = int(back_ns / 1e9) + 2
    steady_to = int((timeout_ns + count * period) / 1e9) + 2
    steady = series[steady_from:steady_to]
    offline = histograms.of_ns(reply.offline_ns)
    online = histograms.of_ns(reply.online_ns)
    return ChurnStep(
        users_per_s=rate,
        churned_users=count,
        changes_scheduled=2 * count,
        notifications=sum(series),
        notifications_per_s_series=series,
        steady_window_s=(steady_from, steady_to),
        notifications_per_s_nominal=round(
            2 * rate * cfg.presence_watch * cfg.presence_sockets_per_user, 1
        ),
        notifications_per_s_steady=round(sum(steady) / len(steady), 1) if steady else None,
        notifications_per_s_peak=max(series, default=0),
        offline_after_timeout_ms=histograms.summary(offline),
        online_after_reconnect_ms=histograms.summary(online),
        unscheduled_changes=reply.unscheduled,
        steady_watchers_received=reply.steady_received,
        steady_watchers_expected=reply.steady_expected,
        reconnects=reply.reconnects,
        held_after=reply.held,
        processor=processor,
        cdf_ms={
            "offline": histograms.cdf(offline, CDF_POINTS),
            "online": histograms.cdf(online, CDF_POINTS),
        },
    )


def _event(user: Login, at_ms: int) -> bytes:
    """A `presence.event` v1 (schemas/json/presence.event.v1.json) for a socket that does not
    exist: a heartbeat of an online user changes nothing, so it costs the processor only its
    bookkeeping."""
    return orjson.dumps(
        {
            "type": "presence.event",
            "v": 1,
            "kind": "heartbeat",
            "user_id": user.user_id,
            "device_id": user.device_id,
            "connection_id": f"bench-flood-{user.user_id}",
            "at_ms": at_ms,
        }
    )


async def _flood(ctx: Context, probe: ProcessorProbe, users: list[Login], total: int) -> Flood:
    """Produce `total` heartbeats as fast as one aiokafka producer can, and time how fast the
    processors' committed offsets follow (sampled every 0.25 s)."""
    assert ctx.stack.kafka_bootstrap is not None
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.stack.kafka_bootstrap,
        client_id="parley-bench-presence",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    window = Window(ctx, probe)
    await window.open()
    target = window.committed0 + total
    samples: list[tuple[float, int]] = []

    async def follow() -> None:
        for _ in range(2400):  # at most 10 minutes at 0.25 s
            committed = await probe.committed()
            samples.append((time.monotonic() - window.t0, committed - window.committed0))
            if committed >= target:
                return
            await asyncio.sleep(0.25)

    follower = asyncio.create_task(follow())
    produced_s = 0.0
    try:
        with progress_bar(total, "presence events → topic", "ev") as bar:
            pending: list[asyncio.Future[Any]] = []
            for i in range(total):
                user = users[i % len(users)]
                pending.append(
                    await producer.send(
                        EVENTS_TOPIC, _event(user, int(time.time() * 1000)), user.user_id.encode()
                    )
                )
                if len(pending) >= 2000:
                    await asyncio.gather(*pending)
                    bar.update(len(pending))
                    pending = []
            await asyncio.gather(*pending)
            bar.update(len(pending))
        produced_s = time.monotonic() - window.t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower, 120)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await producer.stop()
    window_out = await window.close()
    caught_up = next((t for t, n in samples if n >= total), None)
    # The processor's rate per half second, from the committed offsets.
    rates = [
        (round(t1, 2), round((n1 - n0) / (t1 - t0), 1))
        for (t0, n0), (t1, n1) in zip(samples[::2], samples[2::2], strict=False)
    ]
    # CPU per event, whole and net of what the processor uses when idle (its timers and
    # fetches): figures that depend less on how busy the rest of the machine was.
    idle = ctx.results.meta.idle_stack_cpu_cores.get("processor", 0.0)
    cores = window_out.cpu_cores.get("processor", 0.0)
    handled = window_out.events_handled
    gross_us = cores * window_out.seconds / handled * 1e6 if handled else None
    net_us = (cores - idle) * window_out.seconds / handled * 1e6 if handled else None
    return Flood(
        events=total,
        processor=window_out,
        processor_idle_cores=idle,
        processor_us_per_event_gross=round(gross_us, 1) if gross_us else None,
        processor_us_per_event=round(net_us, 1) if net_us else None,
        events_per_processor_core_s=round(1e6 / net_us) if net_us and net_us > 0 else None,
        produce_s=round(produced_s, 2),
        produced_per_s=round(total / produced_s, 1) if produced_s else None,
        caught_up_s=round(caught_up, 2) if caught_up is not None else None,
        handled_per_s=round(total / caught_up, 1) if caught_up else None,
        peak_handled_per_s=max((r for _, r in rates), default=None),
        handled_per_s_series=rates,
    )


async def run_presence(ctx: Context) -> None:
    cfg = ctx.cfg
    out = ctx.results.presence = PresenceResults(
        cfg.presence_watch, cfg.presence_sockets_per_user, cfg.presence_timeout_s
    )
    # Other scenarios' sockets would keep their users online whatever this one closes.
    await ctx.fleet.close_all()
    groups = await _make_groups(ctx)
    users = [u for g in groups for u in g]
    out.users, out.groups = len(users), len(groups)
    slots = _slots(ctx, groups, await fetch_cursors(ctx, users))
    out.sockets = len(slots)
    if not ctx.stack.kafka_bootstrap:
        out.error = "no broker address (use --kafka-bootstrap with --url)"
        return
    probe = ProcessorProbe(ctx.stack.kafka_bootstrap, ctx.stack.processor_url)
    pool = WorkerPool(ctx.ws_url, slots, cfg.workers, PresenceWorker)
    try:
        await probe.start()
        connect = Window(ctx, probe)
        await connect.open()
        n, bound_s = len(slots), cfg.presence_connect_s()
        level = await pool.hold(n, cfg.connect_concurrency, bound_s, f"presence: connect {n}", n)
        out.connect = PresenceConnect(
            held=level.held,
            connects=level.connects,
            subscribed=await _await_snapshots(pool, len(slots) * cfg.presence_watch, 60),
            processor=await connect.close(),
        )
        # Connected, subscribed, heartbeating: the record rate the protocol itself makes (since
        # gateways aggregate heartbeats into `presence.seen`, at most `presence_partitions`
        # records per 3.75 s per gateway, besides connects and closes).
        hold = Window(ctx, probe)
        await hold.open()
        await asyncio.sleep(cfg.presence_hold_s)
        out.hold = await hold.close()
        for rate in cfg.presence_step_rates():
            out.steps.append(await _churn_step(ctx, pool, probe, users, rate))
        out.flood = await _flood(ctx, probe, users, cfg.presence_flood_events)
    finally:
        await pool.close()
        await probe.stop()
