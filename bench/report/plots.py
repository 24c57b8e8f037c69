"""The run's plots (PNG, matplotlib): latency CDFs beside the floor's, the throughput curves,
memory per idle socket, the storm's time to `synced`, and presence over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.harness import histograms
from bench.harness.histograms import Histogram
from bench.harness.results import Results
from bench.report.verdicts import IDLE_SOCKET_KIB, STORM_S

POINTS = 3000


def plots(results: Results, plotted: dict[str, Histogram], prefix: Path) -> list[str]:
    """Writes `<prefix>-<name>.png` for each plot there is data for; returns their paths."""
    written: list[str] = []
    for name, fig in (
        ("latency-cdf", _latency(plotted)),
        ("throughput", _throughput(results)),
        ("memory", _memory(results)),
        ("storm", _storm(plotted)),
        ("presence", _presence(results)),
    ):
        if fig is None:
            continue
        fig.tight_layout()
        path = prefix.with_name(f"{prefix.name}-{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def _cdf(ax: Axes, histogram: Histogram, label: str, style: str = "-") -> None:
    points = histograms.cdf(histogram, POINTS)
    if points.x:
        ax.plot(points.x, points.y, style, label=label, linewidth=1.4)


def _latency(plotted: dict[str, Histogram]) -> Figure | None:
    kinds = [k for k in ("1:1", "group") if any(key.startswith(f"{k}@") for key in plotted)]
    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.5), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for key, histogram in plotted.items():
            if not key.startswith(f"{kind}@"):
                continue
            rate = key.split("@")[1]
            _cdf(ax, histogram, f"{kind} @ {rate}/s")
            if f"floor@{rate}" in plotted:
                _cdf(ax, plotted[f"floor@{rate}"], f"floor @ {rate}/s", "--")
            if f"floor-txn@{rate}" in plotted:
                _cdf(ax, plotted[f"floor-txn@{rate}"], f"transactional floor @ {rate}/s", "-.")
            if f"floor-durable@{rate}" in plotted:
                _cdf(ax, plotted[f"floor-durable@{rate}"], f"durable two-hop floor @ {rate}/s", ":")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction of deliveries ≤ x")
        ax.set_title(f"{kind} send → receive")
        ax.axvline(10, color="grey", linestyle=":", linewidth=1)
        ax.axvline(50, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return fig


def _throughput(results: Results) -> Figure | None:
    tp = results.throughput
    if not tp or not tp.curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax2 = ax.twinx()
    top = 0.0
    for n, curve in enumerate(tp.curves):
        offered = [s.offered_deliveries_per_s or 0.0 for s in curve.steps]
        delivered = [s.delivered_per_s or 0.0 for s in curve.steps]
        p99 = [s.latency_ms.p99 or float("nan") for s in curve.steps]
        ax.plot(offered, delivered, "o-", color=f"C{n}", label=f"delivered/s, {curve.kind}")
        ax2.plot(offered, p99, "s--", color=f"C{n}", alpha=0.6, label=f"p99, {curve.kind}")
        top = max(top, *offered)
    ax.plot([0, top], [0, top], ":", color="grey", label="delivered = offered")
    ax.set_xlabel("offered deliveries/s (messages/s x recipients)")
    ax.set_ylabel("delivered/s")
    ax.grid(True, alpha=0.3)
    bound = tp.p99_bound_ms
    ax2.axhline(bound, color="tab:red", linestyle=":", linewidth=1, label=f"p99 bound {bound:g} ms")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 latency (ms, log)")
    lines1, labels1 = ax.get_legend_handles_labels()
    lines2, labels2 = ax2.get_legend_handles_labels()
    ax.legend(lines1 + lines2, labels1 + labels2, loc="upper left", fontsize=7)
    ax.set_title("throughput: delivered vs offered, with p99")
    return fig


def _memory(results: Results) -> Figure | None:
    conns = results.connections
    if not conns or not conns.levels:
        return None
    xs = list(range(len(conns.levels)))
    avg = [row.kib_per_connection or 0.0 for row in conns.levels]
    marginal = [row.marginal_kib_per_connection or 0.0 for row in conns.levels]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.bar([x - 0.2 for x in xs], avg, width=0.4, label="vs baseline (RSS - RSS0)/n")
    ax.bar([x + 0.2 for x in xs], marginal, width=0.4, label="marginal, vs previous level")
    target = f"target {IDLE_SOCKET_KIB:g} KiB"
    ax.axhline(IDLE_SOCKET_KIB, color="tab:red", linestyle=":", label=target)
    ax.set_xticks(xs, [f"{row.level:,}" for row in conns.levels])
    ax.set_xlabel("idle connected sockets")
    ax.set_ylabel("gateway RSS per connection (KiB)")
    ax.set_title("idle connection memory on one gateway")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def _storm(plotted: dict[str, Histogram]) -> Figure | None:
    synced = plotted.get("storm")
    if synced is None or not synced.get_total_count():
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = histograms.cdf(synced, POINTS, unit_us=1e6)
    ax.plot(points.x, points.y, "-")
    ax.axvline(STORM_S, color="tab:red", linestyle=":", label=f"target {STORM_S:g} s")
    ax.set_xlabel("seconds from reconnect to synced")
    ax.set_ylabel("fraction of clients synced")
    ax.set_title(f"reconnect storm: {synced.get_total_count():,} clients")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _presence(results: Results) -> Figure | None:
    """Frames/s over each churn step, and the processor's rate during the flood."""
    presence = results.presence
    if not presence or not presence.steps:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in presence.steps:
        series = s.notifications_per_s_series
        left.plot(range(len(series)), series, label=f"{s.users_per_s:g} users/s")
    left.set_xlabel("seconds since the step's first close")
    left.set_ylabel("presence frames/s, all sockets")
    left.set_title(f"notifications: {presence.sockets:,} sockets, {presence.watch} watched each")
    left.axvline(presence.timeout_s, color="grey", linestyle=":", label="first offline due")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    flood = presence.flood
    if flood and flood.handled_per_s_series:
        points = flood.handled_per_s_series
        right.plot([t for t, _ in points], [r for _, r in points], "o-", markersize=3)
        produced = flood.produced_per_s or 0.0
        right.axhline(produced, color="grey", linestyle=":", label="produced/s")
        right.legend(fontsize=8)
    right.set_xlabel("seconds since the flood began")
    right.set_ylabel("events/s committed by the processor")
    right.set_title("presence events: processor ceiling")
    right.grid(True, alpha=0.3)
    return fig
