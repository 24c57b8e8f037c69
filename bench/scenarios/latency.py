"""End-to-end latency at fixed offered rates (1:1 pairs and a group), and throughput curves that
step the rate up until the stack saturates; every figure also as a multiple of the floor."""

from __future__ import annotations

from bench.harness.context import Context, between_runs, paced, use_cursors
from bench.harness.load import Target
from bench.harness.results import Curve, LatencyResults, ThroughputResults
from parley_client import Login


async def run_latency(ctx: Context) -> None:
    cfg = ctx.cfg
    assert ctx.group_channel is not None
    use_cursors(ctx)
    users = ctx.users[: max(2 * cfg.pairs, cfg.group_size)]
    await ctx.fleet.ensure(users)
    out = ctx.results.latency = LatencyResults(cfg.pairs, cfg.group_size)
    direct = [Target(ctx.users[2 * i], ch, 1) for i, ch in enumerate(ctx.pair_channels)]
    members = ctx.users[: cfg.group_size]
    group = [Target(m, ctx.group_channel, cfg.group_size - 1) for m in members]
    for kind, targets in (("1:1", direct), ("group", group)):
        out.warm_up[kind] = (await paced(ctx, targets, 50, 2, f"warm-up {kind}")).row
        await between_runs(ctx, users)
        for rate in cfg.latency_rates:
            label = f"latency {kind} @{rate:g}/s"
            run = await paced(ctx, targets, rate, cfg.latency_duration_s, label, kind)
            ctx.plotted[f"{kind}@{rate:g}"] = run.latency
            run.row.after = await between_runs(ctx, users)
            out.runs.append(run.row)


async def run_throughput(ctx: Context) -> None:
    """Two curves, each stepping up the offered rate until p99 passes 10x the bound: 1:1
    pairs (one delivery per message) and a 100-member group (one per other member)."""
    cfg = ctx.cfg
    assert ctx.throughput_group is not None
    use_cursors(ctx)
    base = cfg.throughput_offset()
    users = ctx.users[base : base + max(2 * cfg.throughput_pairs, cfg.group_size)]
    await ctx.fleet.keep_only(users)
    await ctx.fleet.ensure(users)
    pairs = [Target(ctx.users[base + 2 * i], ch, 1) for i, ch in enumerate(ctx.throughput_channels)]
    members = ctx.users[base : base + cfg.group_size]
    group = [Target(m, ctx.throughput_group, len(members) - 1) for m in members]
    ctx.results.throughput = ThroughputResults(cfg.p99_bound_ms, cfg.step_s)
    for kind, targets, rates in (
        (f"{cfg.throughput_pairs} 1:1 pairs", pairs, cfg.throughput_rates),
        (f"a {len(members)}-member group", group, cfg.group_throughput_rates),
    ):
        await _curve(ctx, ctx.results.throughput, kind, targets, rates, users)


async def _curve(
    ctx: Context,
    out: ThroughputResults,
    kind: str,
    targets: list[Target],
    rates: list[float],
    users: list[Login],
) -> None:
    cfg = ctx.cfg
    fanout = targets[0].expected
    warm = await paced(ctx, targets, max(min(rates[0], 100.0), 10.0), 2, f"warm-up {kind}")
    await between_runs(ctx, users)
    curve = Curve(kind, fanout, warm.row)
    out.curves.append(curve)
    for i, rate in enumerate(rates):
        label = f"throughput, {kind} @{rate:g}/s"
        row = (await paced(ctx, targets, rate, cfg.step_s, label, "throughput")).row
        row.offered_deliveries_per_s = rate * fanout
        row.after = await between_runs(ctx, users)
        p99 = row.latency_ms.p99
        row.within_bound = bool(
            p99 is not None and p99 <= cfg.p99_bound_ms and not row.missing and not row.aborted
        )
        curve.steps.append(row)
        delivered = row.delivered_per_s or 0.0
        if row.within_bound:
            curve.max_delivered_per_s_within_bound = max(
                curve.max_delivered_per_s_within_bound, delivered
            )
            out.max_delivered_per_s_within_bound = max(
                out.max_delivered_per_s_within_bound, delivered
            )
        reason = row.aborted
        if reason is None and (p99 is None or p99 > 10 * cfg.p99_bound_ms):
            reason = f"p99 {p99} ms > 10x the bound at {rate:g}/s"
        if reason is None and delivered < 0.8 * rate * fanout:
            reason = f"delivered {delivered:g}/s < 80% of {rate * fanout:g}/s offered"
        if reason is not None:
            curve.skipped_rates = rates[i + 1 :]
            curve.stopped_because = reason
            break
