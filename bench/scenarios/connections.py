"""Idle sockets by the thousand, held by worker processes: the gateway's RSS per idle socket at
each level (connections), and all of them closing and reconnecting at once (storm)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import httpx
import psutil

from bench.harness import histograms
from bench.harness.context import Context, fetch_cursors, paced
from bench.harness.load import Target
from bench.harness.results import Baseline, ConnectionResults, Level, Reconnect, StormResults
from bench.harness.stack import Stack
from bench.harness.workers import Slot, Worker, WorkerPool
from parley_client import ApiError


async def setup_idle_clients(ctx: Context) -> None:
    """The sockets of the connection and storm scenarios: `sockets_per_user` sockets share
    each device token. Each user first gets a few unread messages in its ring channels, which
    every one of its sockets receives in its sync (the bench never acks)."""
    cfg = ctx.cfg
    users = ctx.users[: cfg.conn_users()]
    cursors = await fetch_cursors(ctx, users)
    unread = {u.user_id: 0 for u in users}
    if cfg.unread_per_channel > 0 and ctx.ring:
        await ctx.fleet.ensure(users)
        targets = [Target(users[a], ch, 1) for a, _, ch in ctx.ring]
        count = cfg.unread_per_channel * len(targets)
        label = "unread messages"
        run = await paced(ctx, targets, 300.0, count / 300.0, label, drain_s=30, abort_after_s=30)
        ctx.results.unread_messages = run.row
        for a, b, _ in ctx.ring:
            unread[users[a].user_id] += cfg.unread_per_channel
            unread[users[b].user_id] += cfg.unread_per_channel
        await ctx.fleet.close_all()
    owner = [users[i // cfg.sockets_per_user] for i in range(cfg.conn_sockets())]
    ctx.slots = [
        Slot(i, user.token, cursors[user.user_id], unread[user.user_id])
        for i, user in enumerate(owner)
    ]
    ctx.pool = WorkerPool(ctx.ws_url, ctx.slots, cfg.workers)


async def _rss(stack: Stack, samples: int = 3) -> int | None:
    values: list[int] = []
    for _ in range(samples):
        rss = stack.gateway_rss()
        if rss is not None:
            values.append(rss)
        await asyncio.sleep(0.5)
    return int(statistics.median(values)) if values else None


async def _connections(ctx: Context) -> int | None:
    """The sockets the gateway counts (`/healthz`)."""
    with contextlib.suppress(ApiError, httpx.HTTPError):
        return int((await ctx.api.healthz())["connections"])
    return None


def _kib(grown: int | None, sockets: int) -> float | None:
    return round(grown / sockets / 1024, 2) if grown is not None and sockets > 0 else None


async def run_connections(ctx: Context) -> None:
    cfg, stack, pool = ctx.cfg, ctx.stack, ctx.pool
    assert pool is not None
    out = ctx.results.connections = ConnectionResults(cfg.sockets_per_user)
    gateway = stack.gateway_process()
    if gateway is not None:
        out.gateway_pid = gateway.pid
        with contextlib.suppress(Exception):
            out.gateway_nofile_limit = list(gateway.rlimit(psutil.RLIMIT_NOFILE))
    await asyncio.sleep(2)
    rss0 = await _rss(stack)
    out.baseline = Baseline(rss0, await _connections(ctx))
    prev_rss, prev_held = rss0, 0
    for level in cfg.conn_levels:
        started = time.monotonic()
        rss_before = await _rss(stack, 1)
        desc = f"connections → {level}"
        reply = await pool.hold(level, cfg.connect_concurrency, 240.0, desc, level - prev_held)
        await asyncio.sleep(3)  # let the gateway finish its per-socket work
        rss = await _rss(stack)
        held = reply.held
        out.levels.append(
            Level(
                level=level,
                held=held,
                connects=reply.connects,
                client_closes=reply.closes,
                connect_and_sync_s=histograms.seconds(histograms.of_seconds(reply.synced_s)),
                elapsed_s=round(time.monotonic() - started, 2),
                healthz_connections=await _connections(ctx),
                rss_before_bytes=rss_before,
                rss_bytes=rss,
                # Against the baseline with no bench sockets (the figure the target is for),
                # and the marginal cost since the previous level.
                kib_per_connection=_kib(rss - rss0 if rss and rss0 else None, held),
                marginal_kib_per_connection=_kib(
                    rss - prev_rss if rss and prev_rss else None, held - prev_held
                ),
            )
        )
        prev_rss, prev_held = rss, held


async def run_storm(ctx: Context) -> None:
    cfg, pool = ctx.cfg, ctx.pool
    assert pool is not None
    n = cfg.storm_clients
    out = ctx.results.storm = StormResults(n, cfg.storm_deadline_s)
    held_now = (await pool.call(Worker.stats)).held
    to_open = max(n - held_now, 0)
    level = await pool.hold(n, cfg.connect_concurrency, 240.0, f"storm: connect {n}", to_open)
    out.connected_before, out.connect = level.held, level.connects
    await asyncio.sleep(2)
    out.healthz_before = await _connections(ctx)
    drop = await pool.call(Worker.drop)
    out.drop_s, out.dropped = round(drop.elapsed_s, 3), drop.closed
    start_at = time.monotonic() + 0.5
    storm = await pool.with_progress(
        out.dropped,
        f"storm: {out.dropped} reconnecting",
        pool.call(Worker.storm, start_at, n, cfg.storm_deadline_s),
    )
    synced = histograms.of_seconds(storm.synced_s)
    times = histograms.seconds(synced)
    failed = storm.connects.failed
    out.reconnect = Reconnect(
        connects=storm.connects,
        all_synced=failed == 0 and times.count == out.dropped,
        all_synced_s=times.max if times.count and failed == 0 else None,
        time_to_synced_s=times,
        expected_sync_messages=sorted({s.expected_sync for s in ctx.slots[:n]}),
        sync_messages_min=min(storm.sync_messages, default=None),
        sync_messages_max=max(storm.sync_messages, default=None),
        sync_count_wrong=storm.sync_count_wrong,
        healthz_after=await _connections(ctx),
    )
    ctx.plotted["storm"] = synced
