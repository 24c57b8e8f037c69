"""`python -m bench`: start (or find) the stack, run the scenarios, write the results."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.api import Api, load_users, save_users
from bench.config import Config, parse_args
from bench.load import Fleet, Tracker
from bench.presence import run_presence
from bench.scenarios import (
    Context,
    add_floor_ratios,
    measure_idle,
    run_connections,
    run_floor,
    run_latency,
    run_storm,
    run_throughput,
    settle_stack,
    setup_channels,
    setup_idle_clients,
)
from bench.soak import run_soak
from bench.stack import (
    Stack,
    copy_logs,
    cpu_delta,
    cpu_snapshot,
    external_stack,
    raise_nofile_limit,
    scan_logs,
    start_dev_stack,
)

ScenarioFn = Callable[[Context], Awaitable[None]]
SCENARIO_FNS: dict[str, ScenarioFn] = {
    "floor": run_floor,
    "connections": run_connections,
    "storm": run_storm,
    "latency": run_latency,
    "throughput": run_throughput,
    "soak": run_soak,
    "presence": run_presence,
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
        producers = 2 if cfg.floor_transactions else 1
        return 120 + producers * rates * (cfg.latency_duration_s + cfg.drain_s + 10)
    if name == "latency":
        return 120 + 2 * rates * (cfg.latency_duration_s + cfg.drain_s + 35)
    if name == "throughput":
        steps = len(cfg.throughput_rates) + len(cfg.group_throughput_rates)
        return 180 + steps * (cfg.step_s + cfg.drain_s + 35)
    if name == "soak":
        return 180 + cfg.soak_messages / cfg.soak_rate + 2 * cfg.drain_s
    if name == "connections":
        return 120 + len(cfg.conn_levels) * 250
    if name == "presence":
        step = cfg.presence_step_s + cfg.presence_timeout_s + 40
        flood = 240
        return (
            300
            + cfg.presence_connect_s()
            + cfg.presence_hold_s
            + flood
            + (len(cfg.presence_step_rates()) * step)
        )
    return 300 + cfg.storm_deadline_s


class Timings:
    def __init__(self, stack: Stack | None, results: dict[str, Any], clock0: float) -> None:
        self.stack = stack
        self.results = results
        self.clock0 = clock0
        results.setdefault("timings", {})

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> Any:
        started = time.monotonic()
        before = cpu_snapshot(self.stack) if self.stack else None
        try:
            yield
        finally:
            entry: dict[str, Any] = {
                "wall_s": round(time.monotonic() - started, 2),
                "start_s": round(started - self.clock0, 2),
                "end_s": round(time.monotonic() - self.clock0, 2),
            }
            if self.stack is not None and before is not None:
                entry["cpu"] = cpu_delta(before, cpu_snapshot(self.stack))
            self.results["timings"][name] = entry


async def _main(cfg: Config) -> int:
    began = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = cfg.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile_limit()
    results: dict[str, Any] = {
        "meta": {
            "timestamp": stamp,
            "quick": cfg.quick,
            "scenarios": cfg.only,
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "git": _git_rev(),
            "python": sys.version.split()[0],
            "bench_nofile_limit": list(nofile),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
        },
        "notes": [],
        "skipped": {},
    }
    stack: Stack | None = None
    ctx: Context | None = None
    timings = Timings(None, results, began)
    exit_code = 0
    try:
        async with timings.phase("start stack"):
            if cfg.url:
                stack = external_stack(cfg.url, cfg.kafka_bootstrap, cfg.gateway_pid)
                results["meta"]["stack"] = f"external {stack.http_url}"
                results["notes"].append(
                    "External stack: its send rate limit was not raised; rate_limited errors "
                    "count as lost messages."
                )
            else:
                stack = await asyncio.to_thread(
                    start_dev_stack, began, 180.0, cfg.verbose, cfg.data_dir, cfg.message_store
                )
                results["meta"]["stack"] = f"parley dev on {stack.http_url}"
                results["meta"]["startup_s"] = round(stack.startup_s, 2)
                results["meta"]["data_dir"] = str(stack.data_dir)
                results["meta"]["message_store"] = cfg.message_store
        timings.stack = stack
        assert stack is not None
        api = Api(stack.http_url)
        tracker = Tracker()

        async def no_cursors(user: Any) -> dict[str, str]:
            return {}

        # With --data-dir, accounts made by an earlier run on that dir are reused.
        users_file = cfg.data_dir / "bench-users.json" if cfg.data_dir and stack.owned else None
        async with timings.phase("users"):
            kept = load_users(users_file) if users_file else []
            users = await api.create_users(cfg.users_needed(), cfg.signup_concurrency, kept)
            if users_file:
                save_users(users_file, users)
        results["meta"]["users_reused"] = min(len(kept), len(users))
        ws_url = stack.ws_url
        discovered = await api.discovery(users[0])
        if discovered and discovered.startswith(("ws://127.0.0.1", "ws://localhost")):
            ws_url = discovered
        results["meta"]["ws_url"] = ws_url
        results["meta"]["users"] = len(users)
        ctx = Context(
            cfg=cfg,
            stack=stack,
            api=api,
            ws_url=ws_url,
            users=users,
            tracker=tracker,
            fleet=Fleet(ws_url, tracker, no_cursors),
            results=results,
        )
        async with timings.phase("channels"):
            await setup_channels(ctx)
        # The JVMs settle for a few seconds after the setup's traffic (JIT, group joins).
        await asyncio.sleep(1.0 if cfg.quick else 5.0)
        idle_s = 3.0 if cfg.quick else 10.0
        results["meta"]["idle_stack_cpu_cores"] = await measure_idle(ctx, idle_s)
        results["meta"]["idle_measured_s"] = idle_s
        for name in cfg.only:
            elapsed_min = (time.monotonic() - began) / 60
            if elapsed_min > cfg.max_minutes:
                results["skipped"][name] = f"time is up ({elapsed_min:.1f} min > --max-minutes)"
                continue
            if name in ("connections", "storm") and ctx.pool is None:
                async with timings.phase("idle clients setup"):
                    try:
                        await setup_idle_clients(ctx)
                    except Exception as exc:
                        results["skipped"][name] = f"setup failed: {type(exc).__name__}: {exc}"
                        exit_code = 1
                        continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            results.setdefault("settle_before", {})[name] = await settle_stack(ctx, 30)
            async with timings.phase(name):
                try:
                    await asyncio.wait_for(SCENARIO_FNS[name](ctx), _budget_s(cfg, name))
                except TimeoutError:
                    results["skipped"][name] = (
                        f"stopped after its time bound of {_budget_s(cfg, name):.0f}s; "
                        "partial figures kept"
                    )
                    exit_code = 1
                except Exception as exc:
                    results["skipped"][name] = f"failed: {type(exc).__name__}: {exc}"
                    exit_code = 1
            print(
                f"bench: {name} took {results['timings'][name]['wall_s']} s",
                file=sys.stderr,
                flush=True,
            )
            last_pool_user = name == "storm" or (name == "connections" and "storm" not in cfg.only)
            if last_pool_user and ctx.pool is not None:
                await ctx.pool.close()
                ctx.pool = None
        await ctx.fleet.close_all()
    except KeyboardInterrupt:
        results["notes"].append("interrupted")
        exit_code = 130
    finally:
        if ctx is not None:
            with contextlib.suppress(Exception):
                await ctx.fleet.close_all()
            if ctx.pool is not None:
                with contextlib.suppress(Exception):
                    await ctx.pool.close()
            tracker = ctx.tracker
            results["client_observed"] = {
                "unexpected_closes": tracker.unexpected_closes,
                "error_frames": tracker.errors,
                "order_violations": tracker.order_violations,
                "late": tracker.late,
                "fleet_reconnects": ctx.fleet.reconnects,
            }
            with contextlib.suppress(Exception):
                await ctx.api.close()
        if stack is not None:
            async with timings.phase("stop stack"):
                await asyncio.to_thread(stack.stop)
            results["notes"].extend(stack.notes)
            phases = [(k, v["start_s"], v["end_s"]) for k, v in results["timings"].items()]
            results["logs"] = scan_logs(stack, phases)
            if stack.owned:
                logs_dir = results_dir / f"{stamp}-logs"
                results["meta"]["logs_copied"] = copy_logs(stack, logs_dir)
                stack.cleanup(cfg.keep_data)
    add_floor_ratios(results)
    results["meta"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    results["meta"]["total_s"] = round(time.monotonic() - began, 1)
    results["targets"] = [
        {
            "figure": v.figure,
            "measured": v.measured,
            "target": v.target,
            "result": v.mark,
            "notes": v.note,
        }
        for v in report.verdicts(results)
    ]
    prefix = results_dir / stamp
    written: list[str] = []
    try:
        written = report.plots(results, ctx.raw if ctx else {}, prefix)
    except Exception as exc:
        results["notes"].append(f"plots failed: {type(exc).__name__}: {exc}")
    results["meta"]["plots"] = written
    json_path = prefix.with_suffix(".json")
    md_path = prefix.with_suffix(".md")
    report.write_json(json_path, results)
    md_path.write_text(report.markdown(results, written))
    print()
    print(report.table(report.verdicts(results)))
    print()
    for path in [str(json_path), str(md_path), *written]:
        print(path)
    if results["skipped"]:
        print(f"skipped/failed: {results['skipped']}", file=sys.stderr)
    return exit_code


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    import uvloop

    code = uvloop.run(_main(cfg))
    sys.exit(code)
