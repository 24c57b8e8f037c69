"""The stack warmed before it is measured: 1:1 load in windows until the broker's CPU settles.

A freshly started broker's JVM compiles its hot paths (C2) under the first minute or so of
load, and that takes 0.3-0.7 cores of this box's two: the first 1:1 steps measured on a cold
stack read the compiler, not Parley (1:1 @ 1,000/s, the broker at 0.75 cores in the first
10 s and 0.38 a minute later, p99 156 against 70-79 ms in the same run). A broker in use has
long since compiled them, so the figures are taken warm, and what the warm-up cost is kept.
"""

from __future__ import annotations

from bench.harness.context import Context, between_runs, paced, use_cursors
from bench.harness.load import Target
from bench.harness.results import WARM_RATE, WARM_WINDOW_S, WarmWindow, warm_settled


async def warm_stack(ctx: Context) -> list[WarmWindow]:
    """1:1 load at `WARM_RATE` in windows of `WARM_WINDOW_S` until the broker's cores fall by
    less than `SETTLED_DROP` (bench/harness/results.py) from one window to the next, or
    `warm_up_max_s` passed; each window's cost."""
    cfg = ctx.cfg
    use_cursors(ctx)
    users = ctx.users[: 2 * cfg.pairs]
    await ctx.fleet.ensure(users)
    targets = [Target(ctx.users[2 * i], ch, 1) for i, ch in enumerate(ctx.pair_channels)]
    windows: list[WarmWindow] = []
    while len(windows) * WARM_WINDOW_S < cfg.warm_up_max_s:
        run = await paced(ctx, targets, WARM_RATE, WARM_WINDOW_S, f"warm-up {len(windows) + 1}")
        await between_runs(ctx, users)
        cores = run.row.cpu.cores if run.row.cpu is not None else {}
        windows.append(WarmWindow(run.row.latency_ms.p99, cores))
        if warm_settled(windows):
            break
    return windows
