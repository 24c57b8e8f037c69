"""The scenarios (presence is in bench/presence.py). Each records its figures into `ctx.results[name]` as it goes, so a
scenario cut short by its time bound still leaves what it measured."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.api import Api, User
from bench.config import Config
from bench.floor import FETCH_MAX_WAIT_MS, Floor, depth_probe, warm_up
from bench.load import Fleet, Run, Target, Tracker, paced_load, quiesce
from bench.progress import bar as progress_bar
from bench.stack import Stack, cpu_delta, cpu_snapshot
from bench.stats import cdf_points, summarize_ns, summarize_s
from bench.workers import Slot, WorkerPool

CDF_POINTS = 300


@dataclass
class Context:
    cfg: Config
    stack: Stack
    api: Api
    ws_url: str
    users: list[User]
    tracker: Tracker
    fleet: Fleet
    results: dict[str, Any]
    pair_channels: list[str] = field(default_factory=list)
    throughput_channels: list[str] = field(default_factory=list)
    group_channel: str | None = None
    throughput_group: str | None = None
    ring: list[tuple[int, int, str]] = field(default_factory=list)
    user_channels: dict[int, set[str]] = field(default_factory=dict)
    pool: WorkerPool | None = None
    slots: list[Slot] = field(default_factory=list)
    idle_work_cores: float = 0.5
    idle_cores: dict[str, float] = field(default_factory=dict)
    """CPU (cores) each process role of the stack uses with no client traffic."""
    raw: dict[str, list[float]] = field(default_factory=dict)
    """Latency samples (ms) per run label, for the plots only (not written to JSON)."""

    def note_channel(self, channel_id: str, *members: User) -> None:
        for m in members:
            self.user_channels.setdefault(m.index, set()).add(channel_id)


async def setup_channels(ctx: Context) -> None:
    cfg, api, users = ctx.cfg, ctx.api, ctx.users
    semaphore = asyncio.Semaphore(8)

    async def direct(a: User, b: User) -> str:
        async with semaphore:
            channel_id = await api.direct(a, b)
        ctx.note_channel(channel_id, a, b)
        return channel_id

    if "latency" in cfg.only:
        ctx.pair_channels = await asyncio.gather(
            *(direct(users[2 * i], users[2 * i + 1]) for i in range(cfg.pairs))
        )
        members = users[: cfg.group_size]
        ctx.group_channel = await api.group(members[0], members, "bench group")
        ctx.note_channel(ctx.group_channel, *members)
    if "throughput" in cfg.only:
        base = cfg.throughput_offset()
        ctx.throughput_channels = await asyncio.gather(
            *(
                direct(users[base + 2 * i], users[base + 2 * i + 1])
                for i in range(cfg.throughput_pairs)
            )
        )
        members = users[base : base + cfg.group_size]
        ctx.throughput_group = await api.group(members[0], members, "bench throughput group")
        ctx.note_channel(ctx.throughput_group, *members)
    n = cfg.conn_users()
    if n:
        # A ring of direct channels (i, i+2): never one of the (2i, 2i+1) pairs above.
        pairs = sorted({tuple(sorted((i, (i + 2) % n))) for i in range(n)})
        channel_ids = await asyncio.gather(*(direct(users[a], users[b]) for a, b in pairs))
        ctx.ring = [(a, b, ch) for (a, b), ch in zip(pairs, channel_ids, strict=True)]


async def fetch_cursors(ctx: Context, users: list[User]) -> dict[int, dict[str, str]]:
    semaphore = asyncio.Semaphore(16)
    out: dict[int, dict[str, str]] = {}

    async def one(user: User) -> None:
        async with semaphore:
            out[user.index] = await ctx.api.last_message_ids(user)

    await asyncio.gather(*(one(u) for u in users))
    return out


async def setup_idle_clients(ctx: Context) -> None:
    """The sockets of the connection and storm scenarios: `sockets_per_user` sockets share
    each device token. Each user first gets a few unread messages in its ring channels, which
    every one of its sockets receives in its sync (the bench never acks)."""
    cfg = ctx.cfg
    n_users = cfg.conn_users()
    users = ctx.users[:n_users]
    cursors = await fetch_cursors(ctx, users)
    unread: dict[int, int] = {u.index: 0 for u in users}
    if cfg.unread_per_channel > 0 and ctx.ring:
        await ctx.fleet.ensure(users)
        targets = [Target(users[a], ch, 1) for a, _, ch in ctx.ring]
        count = cfg.unread_per_channel * len(targets)
        run = await paced_load(
            ctx.fleet,
            targets,
            rate=300.0,
            duration_s=count / 300.0,
            label="unread messages",
            drain_s=30,
            abort_after_s=30,
        )
        ctx.results.setdefault("setup", {})["unread_messages"] = run.summary()
        for a, b, _ in ctx.ring:
            unread[a] += cfg.unread_per_channel
            unread[b] += cfg.unread_per_channel
        await ctx.fleet.close_all()
    sockets = cfg.conn_sockets()
    ctx.slots = [
        Slot(
            index=i,
            token=users[i // cfg.sockets_per_user].token,
            cursors=cursors[users[i // cfg.sockets_per_user].index],
            expected_sync=unread[users[i // cfg.sockets_per_user].index],
        )
        for i in range(sockets)
    ]
    ctx.pool = WorkerPool(ctx.ws_url, ctx.slots, cfg.workers)


async def with_progress(pool: WorkerPool, total: int, desc: str, call: Any) -> list[dict[str, Any]]:
    pool.reset_progress()
    with progress_bar(total, desc, "sock") as bar:
        task = asyncio.ensure_future(call)
        while not task.done():
            await asyncio.wait([task], timeout=0.25)
            bar.update(pool.progress_total() - bar.n)
        bar.update(pool.progress_total() - bar.n)
        replies: list[dict[str, Any]] = task.result()
        return replies


def merge_samples(replies: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for reply in replies:
        for k, v in reply.get("error_samples", {}).items():
            out.setdefault(k, v)
    return out


def merge_counts(replies: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for reply in replies:
        for k, v in reply.get(key, {}).items():
            out[k] = out.get(k, 0) + int(v)
    return out


async def _rss(stack: Stack, samples: int = 3) -> int | None:
    values: list[int] = []
    for _ in range(samples):
        rss = stack.gateway_rss()
        if rss is not None:
            values.append(rss)
        await asyncio.sleep(0.5)
    return int(statistics.median(values)) if values else None


async def run_connections(ctx: Context) -> None:
    cfg, stack = ctx.cfg, ctx.stack
    assert ctx.pool is not None
    pool = ctx.pool
    out: dict[str, Any] = {"levels": [], "sockets_per_user": cfg.sockets_per_user}
    ctx.results["connections"] = out
    gateway = stack.gateway_process()
    out["gateway_pid"] = gateway.pid if gateway else None
    if gateway is not None:
        with contextlib.suppress(Exception):
            limits = gateway.rlimit(psutil.RLIMIT_NOFILE)
            out["gateway_nofile_limit"] = list(limits)
    await asyncio.sleep(2)
    rss0 = await _rss(stack)
    out["baseline"] = {"rss_bytes": rss0, "healthz_connections": stack.gateway_connections()}
    prev_rss, prev_held = rss0, 0
    per_worker = max(cfg.connect_concurrency // pool.workers, 4)
    for level in cfg.conn_levels:
        started = time.monotonic()
        rss_before = await _rss(stack, 1)
        replies = await with_progress(
            pool,
            level - prev_held,
            f"connections → {level}",
            pool.call("level", level, per_worker, 240.0),
        )
        connect_s = [t for r in replies for t in r["connect_s"]]
        await asyncio.sleep(3)  # let the gateway finish its per-socket work
        rss = await _rss(stack)
        held = sum(r["held"] for r in replies)
        row: dict[str, Any] = {
            "level": level,
            "held": held,
            "opened_now": sum(r["opened"] for r in replies),
            "errors": merge_counts(replies, "errors"),
            "error_samples": merge_samples(replies),
            "retries": sum(r["retries"] for r in replies),
            "client_closes": merge_counts(replies, "closes"),
            "connect_and_sync_s": summarize_s(connect_s),
            "elapsed_s": round(time.monotonic() - started, 2),
            "healthz_connections": stack.gateway_connections(),
            "rss_before_bytes": rss_before,
            "rss_bytes": rss,
        }
        if rss is not None and rss0 is not None and held:
            row["kib_per_connection"] = round((rss - rss0) / held / 1024, 2)
        if rss is not None and prev_rss is not None and held > prev_held:
            row["marginal_kib_per_connection"] = round(
                (rss - prev_rss) / (held - prev_held) / 1024, 2
            )
        out["levels"].append(row)
        prev_rss, prev_held = rss, held


async def run_storm(ctx: Context) -> None:
    cfg, stack = ctx.cfg, ctx.stack
    assert ctx.pool is not None
    pool = ctx.pool
    n = cfg.storm_clients
    out: dict[str, Any] = {"clients": n}
    ctx.results["storm"] = out
    held_now = sum(r["held"] for r in await pool.call("stats"))
    replies = await with_progress(
        pool,
        max(n - min(held_now, n), 0),
        f"storm: connect {n}",
        pool.call("level", n, max(cfg.connect_concurrency // pool.workers, 4), 240.0),
    )
    out["connected_before"] = sum(r["held"] for r in replies)
    out["connect_errors"] = merge_counts(replies, "errors")
    await asyncio.sleep(2)
    out["healthz_before"] = stack.gateway_connections()
    drops = await pool.call("drop")
    out["drop_s"] = round(max(r["elapsed_s"] for r in drops), 3)
    out["dropped"] = sum(r["closed"] for r in drops)
    start_at = time.monotonic() + 0.5
    replies = await with_progress(
        pool,
        out["dropped"],
        f"storm: {out['dropped']} reconnecting",
        pool.call("storm", start_at, n, cfg.storm_deadline_s),
    )
    times = [t for r in replies for t in r["synced_s"]]
    failed = sum(r["failed"] for r in replies)
    sync_counts = [c for r in replies for c in r["sync_messages"]]
    out.update(
        reconnecting=out["dropped"],
        synced=len(times),
        failed=failed,
        all_synced=failed == 0 and len(times) == out["dropped"],
        all_synced_s=round(max(times), 3) if times and failed == 0 else None,
        time_to_synced_s=summarize_s(times),
        retries=sum(r["retries"] for r in replies),
        errors=merge_counts(replies, "errors"),
        error_samples=merge_samples(replies),
        expected_sync_messages=sorted({s.expected_sync for s in ctx.slots[:n]}),
        sync_messages_min=min(sync_counts) if sync_counts else None,
        sync_messages_max=max(sync_counts) if sync_counts else None,
        sync_count_wrong=sum(r["sync_count_wrong"] for r in replies),
        deadline_s=cfg.storm_deadline_s,
        healthz_after=stack.gateway_connections(),
    )
    ctx.raw["storm"] = times


async def _measured_load(
    ctx: Context, targets: list[Target], rate: float, duration_s: float, label: str
) -> tuple[Run, dict[str, Any]]:
    """A paced load, and the CPU each process of the stack spent while it ran and drained."""
    before = cpu_snapshot(ctx.stack)
    run = await paced_load(
        ctx.fleet,
        targets,
        rate,
        duration_s,
        label,
        drain_s=ctx.cfg.drain_s,
        abort_after_s=ctx.cfg.abort_after_s,
    )
    return run, cpu_cost(cpu_delta(before, cpu_snapshot(ctx.stack)), run.sent, ctx.idle_cores)


def cpu_cost(used: dict[str, float], sends: int, idle: dict[str, float]) -> dict[str, Any]:
    """Cores each process used during a run, and its CPU per message sent net of what it
    uses idle: what the box must supply per message."""
    wall = used["wall_s"]
    roles = [r for r in used if r not in ("machine_busy", "wall_s")]
    cores = {r: round(used[r] / wall, 2) for r in roles} if wall > 0 else {}
    cores["machine"] = round(used["machine_busy"] / wall, 2) if wall > 0 else 0.0
    per_send = {
        r: round(1e6 * max(used[r] - idle.get(r, 0.0) * wall, 0.0) / sends)
        for r in roles
        if r != "other"
    }
    per_send["total"] = sum(per_send.values())
    return {"wall_s": wall, "cores": cores, "cpu_us_per_send": per_send if sends else {}}


def _record(
    ctx: Context, key: str, run: Run, cpu: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    row = {**extra, **run.summary()}
    if cpu is not None:
        row["cpu"] = cpu
    xs, ys = cdf_points([v / 1e6 for v in run.latencies_ns], CDF_POINTS)
    row["cdf_ms"] = {"x": [round(x, 3) for x in xs], "y": [round(y, 5) for y in ys]}
    ctx.raw[f"{key}@{run.rate:g}"] = [v / 1e6 for v in run.latencies_ns]
    return row


def _work_cpu(ctx: Context) -> float:
    """CPU seconds so far of the gateway and processor processes."""
    total = 0.0
    for role in ("gateway", "processor"):
        for proc in ctx.stack.processes()[role]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


async def measure_idle(ctx: Context, seconds: float = 3.0) -> dict[str, float]:
    """CPU (in cores) the stack uses with no client traffic: the yardstick for "settled"."""
    procs = ctx.stack.processes()

    def snap() -> dict[str, float]:
        out: dict[str, float] = {}
        for role, group in procs.items():
            for proc in group:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    out[role] = out.get(role, 0.0) + t.user + t.system
        return out

    before, t0 = snap(), time.monotonic()
    await asyncio.sleep(seconds)
    after, t1 = snap(), time.monotonic()
    cores = {role: round((after[role] - before.get(role, 0.0)) / (t1 - t0), 3) for role in after}
    ctx.idle_cores = cores
    ctx.idle_work_cores = cores.get("gateway", 0.0) + cores.get("processor", 0.0)
    return cores


async def settle_stack(ctx: Context, max_s: float) -> dict[str, Any]:
    """Wait until no frame arrived for 0.5 s and the gateway and processor are back near their
    idle CPU (a saturated run leaves a backlog in the stack that would slow the next run)."""
    started = time.monotonic()
    threshold = ctx.idle_work_cores + 0.3
    cpu, at = _work_cpu(ctx), time.monotonic()
    cores = float("nan")
    while time.monotonic() - started < max_s:
        await asyncio.sleep(1.0)
        now_cpu, now = _work_cpu(ctx), time.monotonic()
        cores = (now_cpu - cpu) / (now - at)
        cpu, at = now_cpu, now
        if cores < threshold and time.monotonic_ns() - ctx.tracker.last_frame_ns > 5e8:
            return {"settle_s": round(now - started, 1), "settled": True}
    return {
        "settle_s": round(time.monotonic() - started, 1),
        "settled": False,
        "busy_cores": round(cores, 2),
    }


async def _between_runs(ctx: Context, users: list[User]) -> dict[str, Any]:
    waited = await quiesce(ctx.tracker, 0.5, ctx.cfg.quiesce_max_s)
    settle = await settle_stack(ctx, ctx.cfg.quiesce_max_s)
    before = ctx.fleet.reconnects
    await ctx.fleet.ensure(users)
    return {
        "quiesce_s": round(waited, 2),
        **settle,
        "reconnected": ctx.fleet.reconnects - before,
    }


async def _fleet_cursors(ctx: Context) -> None:
    async def cursors(user: User) -> dict[str, str]:
        return await ctx.api.last_message_ids(user)

    ctx.fleet.cursors = cursors


async def run_latency(ctx: Context) -> None:
    cfg = ctx.cfg
    assert ctx.group_channel is not None
    await _fleet_cursors(ctx)
    users = ctx.users[: max(2 * cfg.pairs, cfg.group_size)]
    await ctx.fleet.ensure(users)
    out: dict[str, Any] = {
        "pairs": cfg.pairs,
        "group_size": cfg.group_size,
        "runs": [],
        "warm_up": {},
    }
    ctx.results["latency"] = out
    direct = [Target(ctx.users[2 * i], ch, 1) for i, ch in enumerate(ctx.pair_channels)]
    members = ctx.users[: cfg.group_size]
    group = [Target(m, ctx.group_channel, cfg.group_size - 1) for m in members]
    for kind, targets in (("1:1", direct), ("group", group)):
        warm = await paced_load(
            ctx.fleet,
            targets,
            rate=50,
            duration_s=2,
            label=f"warm-up {kind}",
            drain_s=cfg.drain_s,
            abort_after_s=cfg.abort_after_s,
        )
        out["warm_up"][kind] = {"sent": warm.sent, "missing": warm.missing, "errors": warm.errors}
        await _between_runs(ctx, users)
        for rate in cfg.latency_rates:
            run, cpu = await _measured_load(
                ctx, targets, rate, cfg.latency_duration_s, f"latency {kind} @{rate:g}/s"
            )
            row = _record(ctx, kind, run, cpu, scenario=kind)
            row["after"] = await _between_runs(ctx, users)
            out["runs"].append(row)


async def run_throughput(ctx: Context) -> None:
    """Two curves, each stepping up the offered rate until p99 passes 10x the bound: 1:1
    pairs (one delivery per message) and a 100-member group (one per other member)."""
    cfg = ctx.cfg
    assert ctx.throughput_group is not None
    await _fleet_cursors(ctx)
    base = cfg.throughput_offset()
    users = ctx.users[base : base + max(2 * cfg.throughput_pairs, cfg.group_size)]
    await ctx.fleet.keep_only(users)
    await ctx.fleet.ensure(users)
    pairs = [Target(ctx.users[base + 2 * i], ch, 1) for i, ch in enumerate(ctx.throughput_channels)]
    members = ctx.users[base : base + cfg.group_size]
    group = [Target(m, ctx.throughput_group, len(members) - 1) for m in members]
    ctx.results["throughput"] = {
        "p99_bound_ms": cfg.p99_bound_ms,
        "step_s": cfg.step_s,
        "max_delivered_per_s_within_bound": 0.0,
        "curves": [],
    }
    for kind, targets, rates in (
        (f"{cfg.throughput_pairs} 1:1 pairs", pairs, cfg.throughput_rates),
        (f"a {len(members)}-member group", group, cfg.group_throughput_rates),
    ):
        await _throughput_curve(ctx, kind, targets, rates, users)


async def _throughput_curve(
    ctx: Context, kind: str, targets: list[Target], rates: list[float], users: list[User]
) -> None:
    cfg = ctx.cfg
    fanout = targets[0].expected
    warm = await paced_load(
        ctx.fleet,
        targets,
        rate=max(min(rates[0], 100.0), 10.0),
        duration_s=2,
        label=f"warm-up throughput, {kind}",
        drain_s=cfg.drain_s,
        abort_after_s=cfg.abort_after_s,
    )
    await _between_runs(ctx, users)
    out = ctx.results["throughput"]
    curve: dict[str, Any] = {
        "kind": kind,
        "deliveries_per_message": fanout,
        "steps": [],
        "skipped_rates": [],
        "max_delivered_per_s_within_bound": 0.0,
        "warm_up": {"sent": warm.sent, "missing": warm.missing, "errors": warm.errors},
    }
    out["curves"].append(curve)
    for i, rate in enumerate(rates):
        run, cpu = await _measured_load(
            ctx, targets, rate, cfg.step_s, f"throughput, {kind} @{rate:g}/s"
        )
        row = _record(ctx, f"throughput {kind}", run, cpu, scenario="throughput")
        row["offered_deliveries_per_s"] = rate * fanout
        row["after"] = await _between_runs(ctx, users)
        p99 = row["latency_ms"]["p99"]
        row["within_bound"] = bool(
            p99 is not None and p99 <= cfg.p99_bound_ms and not run.missing and not run.aborted
        )
        curve["steps"].append(row)
        delivered = row["delivered_per_s"] or 0.0
        if row["within_bound"]:
            curve["max_delivered_per_s_within_bound"] = max(
                curve["max_delivered_per_s_within_bound"], float(delivered)
            )
            out["max_delivered_per_s_within_bound"] = max(
                out["max_delivered_per_s_within_bound"], float(delivered)
            )
        reason = run.aborted
        if reason is None and (p99 is None or p99 > 10 * cfg.p99_bound_ms):
            reason = f"p99 {p99} ms > 10x the bound at {rate:g}/s"
        if reason is None and delivered < 0.8 * rate * fanout:
            reason = f"delivered {delivered:g}/s < 80% of {rate * fanout:g}/s offered"
        if reason is not None:
            curve["skipped_rates"] = rates[i + 1 :]
            curve["stopped_because"] = reason
            break


async def run_floor(ctx: Context) -> None:
    """The idempotent floor at each latency rate, and right after it (on the same machine
    load) the transactional floor at that rate; then the depth probe."""
    cfg = ctx.cfg
    out: dict[str, Any] = {"runs": [], "transactional_runs": []}
    ctx.results["floor"] = out
    if not ctx.stack.kafka_bootstrap:
        out["error"] = "no broker address (use --kafka-bootstrap with --url)"
        return
    out["bootstrap"] = ctx.stack.kafka_bootstrap
    out["partitions"] = cfg.floor_partitions
    out["fetch_max_wait_ms"] = FETCH_MAX_WAIT_MS
    floors = [Floor(ctx.stack.kafka_bootstrap, cfg.floor_partitions)]
    if cfg.floor_transactions:
        floors.append(
            Floor(
                ctx.stack.kafka_bootstrap,
                cfg.floor_partitions,
                transactional=True,
                txn_retry_ms=cfg.floor_txn_retry_ms,
            )
        )
    out["txn_retry_ms"] = cfg.floor_txn_retry_ms
    try:
        for floor in floors:
            await floor.start()
            await warm_up(floor)
        for n, rate in enumerate(cfg.latency_rates):
            for floor in floors:
                samples, info = await floor.run(
                    rate, cfg.latency_duration_s, cfg.drain_s, seq_base=n * 10**9
                )
                label = "floor (transactional)" if floor.transactional else "floor"
                row: dict[str, Any] = {"scenario": label, **info}
                row["latency_ms"] = summarize_ns(samples)
                xs, ys = cdf_points([v / 1e6 for v in samples], CDF_POINTS)
                row["cdf_ms"] = {"x": [round(x, 3) for x in xs], "y": [round(y, 5) for y in ys]}
                key = "floor-txn" if floor.transactional else "floor"
                ctx.raw[f"{key}@{rate:g}"] = [v / 1e6 for v in samples]
                out["transactional_runs" if floor.transactional else "runs"].append(row)
    finally:
        for floor in floors:
            await floor.stop()
    add_transaction_ratios(out)
    if cfg.depth_probe:
        out["depth_probe"] = await depth_probe(
            ctx.stack.kafka_bootstrap, max_records=2_000 if cfg.quick else 20_000
        )


def add_transaction_ratios(floor: dict[str, Any]) -> None:
    """The transactional floor as a multiple of the idempotent floor at the same rate."""
    plain = {r["offered_per_s"]: r for r in floor.get("runs", [])}
    for row in floor.get("transactional_runs", []):
        base = plain.get(row["offered_per_s"])
        if base is None:
            continue
        ratios: dict[str, Any] = {}
        for key in ("p50", "p90", "p99", "p99_9", "max"):
            mine, ref = row["latency_ms"].get(key), base["latency_ms"].get(key)
            ratios[key] = round(mine / ref, 2) if mine is not None and ref else None
        row["ratio_to_idempotent_floor"] = ratios


def add_floor_ratios(results: dict[str, Any]) -> None:
    """Every latency figure also as a multiple of the floor at the same (or nearest) rate."""
    floors = [r for r in results.get("floor", {}).get("runs", []) if r["latency_ms"]["count"]]
    if not floors:
        return
    rows = list(results.get("latency", {}).get("runs", []))
    for curve in results.get("throughput", {}).get("curves", []):
        rows += curve["steps"]
    for row in rows:
        rate = row["offered_per_s"]
        floor = min(floors, key=lambda f: abs(f["offered_per_s"] - rate))
        ratios: dict[str, Any] = {
            "floor_rate": floor["offered_per_s"],
            "floor_lost": floor["missing"] + floor["produce_errors"],
        }
        for key in ("p50", "p90", "p99", "p99_9", "max"):
            mine, base = row["latency_ms"].get(key), floor["latency_ms"].get(key)
            ratios[key] = round(mine / base, 2) if mine is not None and base else None
        row["ratio_to_floor"] = ratios
