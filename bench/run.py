"""`python -m bench`: start (or find) the stack, run the scenarios, write the results."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import typer

from bench.config import Config, command
from bench.harness import cpu, logs
from bench.harness.context import (
    Context,
    create_users,
    load_users,
    measure_idle,
    save_users,
    settle_stack,
    setup_channels,
)
from bench.harness.histograms import Histogram
from bench.harness.load import Fleet, Tracker
from bench.harness.results import ClientObserved, Meta, Results, Timing
from bench.harness.stack import Stack, external_stack, raise_nofile_limit, start_stack
from bench.report import markdown, plots, replication
from bench.report.verdicts import add_floor_ratios, verdicts
from bench.scenarios.connections import run_connections, run_storm, setup_idle_clients
from bench.scenarios.floors import run_floor
from bench.scenarios.isolation import run_isolation
from bench.scenarios.latency import run_latency, run_throughput
from bench.scenarios.presence import run_presence
from bench.scenarios.search import run_search
from bench.scenarios.soak import run_soak
from bench.scenarios.warm import warm_stack
from parley_client import ApiError, Client, Login

# How long the stack is left alone after the setup before its idle CPU is measured.
IDLE_SETTLE_S = 60.0

SCENARIO_FNS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "floor": run_floor,
    "connections": run_connections,
    "storm": run_storm,
    "latency": run_latency,
    "throughput": run_throughput,
    "soak": run_soak,
    "presence": run_presence,
    "search": run_search,
    "isolation": run_isolation,
}


def _git_rev() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}{' (uncommitted changes)' if dirty else ''}" if rev else None


def _budget_s(cfg: Config, name: str) -> float:
    """A hard time bound per scenario, well above what it should take."""
    rates = len(cfg.latency_rates)
    if name == "floor":
        floors = 1 + cfg.floor_transactions + 2 * cfg.floor_relays + cfg.floor_echo
        return 120 + floors * 30 + floors * rates * (cfg.latency_duration_s + cfg.drain_s + 10)
    if name == "latency":
        return 120 + 2 * rates * (cfg.latency_duration_s + cfg.drain_s + 35)
    if name == "throughput":
        steps = len(cfg.throughput_rates) + len(cfg.group_throughput_rates)
        return 180 + steps * (cfg.step_s + cfg.drain_s + 35)
    if name == "soak":
        return 180 + cfg.soak_messages / cfg.soak_rate + 2 * cfg.drain_s
    if name == "connections":
        return 120 + len(cfg.conn_levels) * 250
    if name == "search":
        # The lag run, then a bulk load at no less than ~2,000 msgs/s, then the queries.
        queries = 17 * cfg.search_queries * 2.0
        return (
            300
            + cfg.search_lag_messages / cfg.search_lag_rate
            + cfg.search_messages / 2000
            + queries
        )
    if name == "isolation":
        # Setup and seeding, then four phases, each with its drain and a settle before it.
        phases = 4 * (cfg.isolation_seconds + cfg.drain_s + 2 * cfg.quiesce_max_s)
        return 240 + cfg.isolation_seed_messages / 50 + phases
    if name == "presence":
        step = cfg.presence_step_s + cfg.presence_timeout_s + 40
        flood = 240
        return (
            300
            + cfg.presence_connect_s()
            + cfg.presence_hold_s
            + flood
            + len(cfg.presence_step_rates()) * step
        )
    return 300 + cfg.storm_deadline_s


class Timings:
    """The wall time of each phase of the run, and the CPU each process used meanwhile."""

    def __init__(self, results: Results, clock0: float) -> None:
        self.stack: Stack | None = None
        self.results = results
        self.clock0 = clock0

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[None]:
        started = time.monotonic()
        before = cpu.snapshot(self.stack) if self.stack else None
        try:
            yield
        finally:
            used = cpu.used(before, cpu.snapshot(self.stack)) if self.stack and before else None
            self.results.timings[name] = Timing(
                wall_s=round(time.monotonic() - started, 2),
                start_s=round(started - self.clock0, 2),
                end_s=round(time.monotonic() - self.clock0, 2),
                cpu=used,
            )


def _new_results(cfg: Config, stamp: str) -> Results:
    return Results(
        Meta(
            timestamp=stamp,
            quick=cfg.quick,
            scenarios=list(cfg.only),
            cpus=os.cpu_count(),
            loadavg_before=[round(x, 2) for x in os.getloadavg()],
            git=_git_rev(),
            python=sys.version.split()[0],
            bench_nofile_limit=list(raise_nofile_limit()),
            config=cfg.as_json(),
        )
    )


async def _main(cfg: Config) -> int:
    began = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    cfg.results_dir.mkdir(parents=True, exist_ok=True)
    results = _new_results(cfg, stamp)
    meta = results.meta
    exit_code, plotted = await _on_stack(cfg, results, began, stamp)
    cluster_cfg = cfg.for_cluster() if cfg.cluster and exit_code != 130 else None
    if cluster_cfg is not None:
        cluster_began = time.monotonic()
        cluster = results.cluster = _new_results(cluster_cfg, stamp)
        try:
            code, _ = await _on_stack(cluster_cfg, cluster, cluster_began, stamp, cluster=True)
        except Exception as exc:  # the cluster did not start: the single-node figures stay
            cluster.skipped["cluster"] = f"failed: {type(exc).__name__}: {exc}"
            code = 1
        exit_code = exit_code or code
        cluster.meta.loadavg_after = [round(x, 2) for x in os.getloadavg()]
        cluster.meta.total_s = round(time.monotonic() - cluster_began, 1)
        results.replication = replication.compare(results, cluster)
    elif cfg.cluster:
        results.notes.append("--cluster: neither latency nor throughput ran; no cluster run")
    add_floor_ratios(results)
    meta.loadavg_after = [round(x, 2) for x in os.getloadavg()]
    meta.total_s = round(time.monotonic() - began, 1)
    results.targets = verdicts(results)
    prefix = cfg.results_dir / stamp
    try:
        meta.plots = plots.plots(results, plotted, prefix)
    except Exception as exc:
        results.notes.append(f"plots failed: {type(exc).__name__}: {exc}")
    json_path, md_path = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    markdown.write_json(json_path, results)
    md_path.write_text(markdown.markdown(results, meta.plots))
    print()
    print(markdown.table(results.targets))
    print()
    if results.replication:
        print("\n".join(replication.table(results)))
        print()
    for path in [str(json_path), str(md_path), *meta.plots]:
        print(path)
    if results.skipped:
        print(f"skipped/failed: {results.skipped}", file=sys.stderr)
    return exit_code


async def _start(cfg: Config, results: Results, began: float, cluster: bool) -> Stack:
    """`parley dev`, started again once if it fails: on a shared box another process can take
    a port between its choice and its bind while the JVMs start."""
    try:
        return await asyncio.to_thread(
            start_stack, began, cfg.verbose, cfg.data_dir, cfg.message_store, cluster
        )
    except RuntimeError as exc:
        results.notes.append(f"started parley dev again: {str(exc).splitlines()[0]}")
    return await asyncio.to_thread(
        start_stack, began, cfg.verbose, cfg.data_dir, cfg.message_store, cluster
    )


async def _on_stack(
    cfg: Config, results: Results, began: float, stamp: str, cluster: bool = False
) -> tuple[int, dict[str, Histogram]]:
    """Start the stack (a cluster with `cluster`), run the selected scenarios on it, stop it.
    Returns the exit code so far and the histograms to plot."""
    meta = results.meta
    stack: Stack | None = None
    ctx: Context | None = None
    timings = Timings(results, began)
    exit_code = 0
    try:
        async with timings.phase("start stack"):
            if cfg.url:
                stack = external_stack(cfg.url, cfg.kafka_bootstrap, cfg.gateway_pid)
                meta.stack = f"external {stack.http_url}"
                results.notes.append(
                    "External stack: its limits were not raised: rate_limited errors count "
                    "as lost messages, and more than 8 sockets per device (--sockets-per-user) "
                    "or 4 per presence user (--presence-sockets-per-user) are refused."
                )
            else:
                stack = await _start(cfg, results, began, cluster)
                assert stack.dev is not None
                meta.stack = f"parley dev{' --cluster' if cluster else ''} on {stack.http_url}"
                meta.cluster = cluster
                meta.startup_s = round(stack.dev.startup_s, 2)
                meta.data_dir = str(stack.data_dir)
                meta.message_store = cfg.message_store
        timings.stack = stack
        api = Client(stack.http_url, timeout_s=60, max_connections=32, trust_env=False, retries=3)
        tracker = Tracker()

        async def no_cursors(user: Login) -> dict[str, str]:
            return {}

        # With --data-dir, accounts made by an earlier run on that dir are reused.
        users_file = cfg.data_dir / "bench-users.json" if cfg.data_dir and stack.owned else None
        async with timings.phase("users"):
            kept = load_users(users_file) if users_file else []
            users = await create_users(api, cfg.users_needed(), cfg.signup_concurrency, kept)
            if users_file:
                save_users(users_file, users)
        meta.users_reused = min(len(kept), len(users))
        ws_url = stack.ws_url
        with contextlib.suppress(ApiError):
            discovered = (await api.discovery(users[0]) or [ws_url])[0]
            if discovered.startswith(("ws://127.0.0.1", "ws://localhost")):
                ws_url = discovered
        meta.ws_url, meta.users = ws_url, len(users)
        fleet = Fleet(ws_url, tracker, no_cursors)
        ctx = Context(cfg, stack, api, ws_url, users, tracker, fleet, results)
        async with timings.phase("channels"):
            await setup_channels(ctx)
        # The JVMs settle after the setup's traffic (JIT, group joins): the broker's idle CPU
        # falls for about a minute (0.046 cores 15 s after the setup, 0.032 a minute later).
        meta.idle_settled_s = 1.0 if cfg.quick else IDLE_SETTLE_S
        await asyncio.sleep(meta.idle_settled_s)
        meta.idle_measured_s = 3.0 if cfg.quick else 10.0
        meta.idle_stack_cpu_cores = await measure_idle(ctx, meta.idle_measured_s)
        if cfg.warms_stack():
            async with timings.phase("warm-up"):
                meta.warm_up = await warm_stack(ctx)
        for name in cfg.only:
            elapsed_min = (time.monotonic() - began) / 60
            if elapsed_min > cfg.max_minutes:
                results.skipped[name] = f"time is up ({elapsed_min:.1f} min > --max-minutes)"
                continue
            if name in ("connections", "storm") and ctx.pool is None:
                async with timings.phase("idle clients setup"):
                    try:
                        await setup_idle_clients(ctx)
                    except Exception as exc:
                        results.skipped[name] = f"setup failed: {type(exc).__name__}: {exc}"
                        exit_code = 1
                        continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            results.settle_before[name] = await settle_stack(ctx, 30)
            async with timings.phase(name):
                try:
                    await asyncio.wait_for(SCENARIO_FNS[name](ctx), _budget_s(cfg, name))
                except TimeoutError:
                    results.skipped[name] = (
                        f"stopped after its time bound of {_budget_s(cfg, name):.0f}s; "
                        "partial figures kept"
                    )
                    exit_code = 1
                except Exception as exc:
                    results.skipped[name] = f"failed: {type(exc).__name__}: {exc}"
                    exit_code = 1
            took = results.timings[name].wall_s
            print(f"bench: {name} took {took} s", file=sys.stderr, flush=True)
            last_pool_user = name == "storm" or (name == "connections" and "storm" not in cfg.only)
            if last_pool_user and ctx.pool is not None:
                await ctx.pool.close()
                ctx.pool = None
        await ctx.fleet.close_all()
    except KeyboardInterrupt:
        results.notes.append("interrupted")
        exit_code = 130
    finally:
        if ctx is not None:
            with contextlib.suppress(Exception):
                await ctx.fleet.close_all()
            if ctx.pool is not None:
                with contextlib.suppress(Exception):
                    await ctx.pool.close()
            t = ctx.tracker
            results.client_observed = ClientObserved(
                ctx.fleet.closes, t.errors, t.order_violations, t.late, ctx.fleet.reconnects
            )
            with contextlib.suppress(Exception):
                await ctx.api.aclose()
        if stack is not None:
            async with timings.phase("stop stack"):
                await asyncio.to_thread(stack.stop)
            results.notes.extend(stack.notes)
            phases = [(k, v.start_s, v.end_s) for k, v in results.timings.items()]
            found = logs.stack_logs(stack.dev.log_path if stack.dev else None, stack.data_dir)
            results.logs = {name: logs.scan(path, phases) for name, path in found.items()}
            if stack.owned:
                logs_dir = f"{stamp}-cluster-logs" if cluster else f"{stamp}-logs"
                meta.logs_copied = logs.copy(found, cfg.results_dir / logs_dir)
                stack.cleanup(cfg.keep_data)
    return exit_code, ctx.plotted if ctx else {}


def _run(cfg: Config) -> None:
    import uvloop

    raise typer.Exit(uvloop.run(_main(cfg)))


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.command(context_settings={"max_content_width": 100})(command(_run))


def main() -> None:
    app(prog_name="python -m bench")
