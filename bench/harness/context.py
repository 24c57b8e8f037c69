"""What every scenario works with: the options, the stack, the users and their channels, the
client sockets, the results so far; the waits between runs (quiet, settled, idle CPU); and the
accounts, made here (or kept from an earlier run's `--data-dir`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.config import Config
from bench.harness import cpu
from bench.harness.histograms import Histogram
from bench.harness.load import Fleet, Run, Target, Tracker, paced_load, quiesce
from bench.harness.progress import bar as progress_bar
from bench.harness.results import AfterRun, Results, Settle
from bench.harness.stack import Stack
from bench.harness.workers import Slot, WorkerPool
from parley_client import Client, Login


@dataclass
class Context:
    cfg: Config
    stack: Stack
    api: Client
    ws_url: str
    users: list[Login]
    tracker: Tracker
    fleet: Fleet
    results: Results
    pair_channels: list[str] = field(default_factory=list)
    throughput_channels: list[str] = field(default_factory=list)
    group_channel: str | None = None
    throughput_group: str | None = None
    ring: list[tuple[int, int, str]] = field(default_factory=list)
    pool: WorkerPool | None = None
    slots: list[Slot] = field(default_factory=list)
    idle_work_cores: float = 0.5
    idle_cores: dict[str, float] = field(default_factory=dict)
    """CPU (cores) each process role of the stack uses with no client traffic."""
    plotted: dict[str, Histogram] = field(default_factory=dict)
    """Latency histograms by run label (`1:1@100`, `floor@100`, `storm`), for the plots."""
    calls: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    """The setup's API calls at once (more would wait for the client's pool of 32 connections,
    and time out there)."""

    async def directs(self, pairs: Iterable[tuple[Login, Login]]) -> list[str]:
        """The direct channel of each pair."""

        async def one(a: Login, b: Login) -> str:
            async with self.calls:
                return (await self.api.open_direct(a, b.user_id))["channel_id"]

        return await asyncio.gather(*(one(a, b) for a, b in pairs))

    async def befriend_all(self, members: list[Login]) -> None:
        """Make every two of `members` friends (one asks, the other accepts): presence goes to
        friends only."""

        async def pair(a: Login, b: Login) -> None:
            async with self.calls:
                await self.api.befriend(a, b.user_id)
            async with self.calls:
                await self.api.befriend(b, a.user_id)

        await asyncio.gather(*(pair(a, b) for i, a in enumerate(members) for b in members[i + 1 :]))

    async def group(self, members: list[Login], name: str) -> str:
        """A group of `members`, made by the first of them. The others first let anyone add
        them to groups (by default only friends may, and friendships would change what
        presence costs)."""

        async def open_to_adds(member: Login) -> None:
            async with self.calls:
                await self.api.allow_group_adds(member, "everyone")

        await asyncio.gather(*(open_to_adds(m) for m in members[1:]))
        others = [m.user_id for m in members[1:]]
        async with self.calls:
            return (await self.api.create_group(members[0], name, others))["channel_id"]


def pairs(users: list[Login]) -> list[tuple[Login, Login]]:
    """Users 0 and 1, 2 and 3, ..."""
    return list(zip(users[::2], users[1::2], strict=False))


async def setup_channels(ctx: Context) -> None:
    cfg, users = ctx.cfg, ctx.users
    if "latency" in cfg.only or cfg.warms_stack():  # the warm-up's load goes through its pairs
        ctx.pair_channels = await ctx.directs(pairs(users[: 2 * cfg.pairs]))
    if "latency" in cfg.only:
        ctx.group_channel = await ctx.group(users[: cfg.group_size], "bench group")
    if "throughput" in cfg.only:
        base = cfg.throughput_offset()
        ctx.throughput_channels = await ctx.directs(
            pairs(users[base : base + 2 * cfg.throughput_pairs])
        )
        members = users[base : base + cfg.group_size]
        ctx.throughput_group = await ctx.group(members, "bench throughput group")
    n = cfg.conn_users()
    if n:
        # A ring of direct channels (i, i+2): never one of the (2i, 2i+1) pairs above.
        ring = sorted({(min(i, (i + 2) % n), max(i, (i + 2) % n)) for i in range(n)})
        channel_ids = await ctx.directs((users[a], users[b]) for a, b in ring)
        ctx.ring = [(a, b, ch) for (a, b), ch in zip(ring, channel_ids, strict=True)]


async def fetch_cursors(ctx: Context, users: list[Login]) -> dict[str, dict[str, str]]:
    """Each user's newest message id per channel (by user id), for `hello.cursors`."""
    out: dict[str, dict[str, str]] = {}

    async def one(user: Login) -> None:
        async with ctx.calls:
            out[user.user_id] = await ctx.api.last_message_ids(user)

    await asyncio.gather(*(one(u) for u in users))
    return out


def use_cursors(ctx: Context) -> None:
    """The fleet's sockets say in `hello` where each user's channels are, so that a reconnect
    syncs only what the user missed."""
    ctx.fleet.cursors = ctx.api.last_message_ids


async def paced(
    ctx: Context,
    targets: list[Target],
    rate: float,
    duration_s: float,
    label: str,
    scenario: str | None = None,
    *,
    drain_s: float | None = None,
    abort_after_s: float | None = None,
    keep_tenths: bool = False,
    fleet: Fleet | None = None,
) -> Run:
    """A paced load through the fleet (the context's, unless given; within the run's bounds,
    unless given), and the CPU each process of the stack spent while it ran and drained."""
    before = cpu.snapshot(ctx.stack)
    run = await paced_load(
        fleet or ctx.fleet,
        targets,
        rate,
        duration_s,
        label,
        scenario or label,
        drain_s=ctx.cfg.drain_s if drain_s is None else drain_s,
        abort_after_s=ctx.cfg.abort_after_s if abort_after_s is None else abort_after_s,
        keep_tenths=keep_tenths,
    )
    used = cpu.used(before, cpu.snapshot(ctx.stack))
    run.row.cpu = cpu.cost(used, run.row.sent, ctx.idle_cores, run.row.delivered)
    return run


async def measure_idle(ctx: Context, seconds: float) -> dict[str, float]:
    """CPU (in cores) the stack uses with no client traffic: the yardstick for "settled"."""
    cores = await cpu.idle_cores(ctx.stack, seconds)
    ctx.idle_cores = cores
    ctx.idle_work_cores = cores.get("gateway", 0.0) + cores.get("processor", 0.0)
    return cores


async def settle_stack(ctx: Context, max_s: float) -> Settle:
    """Wait until no frame arrived for 0.5 s and the gateway and processor are back near their
    idle CPU (a saturated run leaves a backlog in the stack that would slow the next run)."""
    started = time.monotonic()
    threshold = ctx.idle_work_cores + 0.3
    seconds, at = cpu.work_seconds(ctx.stack), time.monotonic()
    cores = float("nan")
    while time.monotonic() - started < max_s:
        await asyncio.sleep(1.0)
        now_seconds, now = cpu.work_seconds(ctx.stack), time.monotonic()
        cores = (now_seconds - seconds) / (now - at)
        seconds, at = now_seconds, now
        if cores < threshold and time.monotonic_ns() - ctx.tracker.last_frame_ns > 5e8:
            return Settle(round(now - started, 1), True)
    return Settle(round(time.monotonic() - started, 1), False, round(cores, 2))


async def between_runs(ctx: Context, users: list[Login]) -> AfterRun:
    waited = await quiesce(ctx.tracker, 0.5, ctx.cfg.quiesce_max_s)
    settle = await settle_stack(ctx, ctx.cfg.quiesce_max_s)
    before = ctx.fleet.reconnects
    await ctx.fleet.ensure(users)
    return AfterRun(round(waited, 2), settle, ctx.fleet.reconnects - before)


PASSWORD = "bench-password-1"


def load_users(path: Path) -> list[Login]:
    """Accounts a previous run kept in its data dir (`--data-dir`); none if there is no file."""
    rows = orjson.loads(path.read_bytes()) if path.is_file() else []
    return [Login(r["user_id"], r["device_id"], r["token"], r["username"]) for r in rows]


def save_users(path: Path, users: list[Login]) -> None:
    path.write_bytes(orjson.dumps(users))


async def create_users(
    client: Client, count: int, concurrency: int, kept: list[Login]
) -> list[Login]:
    """Sign up and log in users until there are `count`, a few at a time (argon2 costs the
    server ~0.17 s of CPU per signup and per login). `kept` ones (from an earlier run on the
    same data dir) come first."""
    have = kept[:count]
    prefix = f"b{uuid.uuid4().hex[:8]}_"
    semaphore = asyncio.Semaphore(concurrency)
    with progress_bar(count - len(have), "users (signup+login)", "user") as bar:

        async def one(i: int) -> Login:
            username = f"{prefix}{i:05d}"
            async with semaphore:
                await client.sign_up(username, PASSWORD)
                login = await client.log_in(username, PASSWORD, device_name="bench")
            bar.update(1)
            return login

        return [*have, *await asyncio.gather(*(one(i) for i in range(len(have), count)))]
