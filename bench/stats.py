"""Percentiles and latency summaries (nearest-rank, on sorted samples)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99_9", 99.9),
)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (the smallest value with at least
    `pct`% of the samples at or below it)."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(pct / 100.0 * len(sorted_values)), 1)
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def _summarize(values: list[float], digits: int) -> dict[str, Any]:
    out: dict[str, Any] = {"count": len(values)}
    if not values:
        out.update({name: None for name, _ in PERCENTILES})
        out.update(max=None, mean=None)
        return out
    for name, pct in PERCENTILES:
        out[name] = round(percentile(values, pct), digits)
    out["max"] = round(values[-1], digits)
    out["mean"] = round(sum(values) / len(values), digits)
    return out


def summarize_ns(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Latency samples in nanoseconds -> {count, p50, p90, p99, p99_9, max, mean} in ms."""
    return _summarize(sorted(v / 1e6 for v in samples_ns), 3)


def summarize_s(samples_s: Sequence[float]) -> dict[str, Any]:
    """Durations in seconds -> {count, p50, p90, p99, p99_9, max, mean} in seconds."""
    return _summarize(sorted(samples_s), 4)


def cdf_points(samples: Sequence[float], points: int = 2000) -> tuple[list[float], list[float]]:
    """(values, cumulative fractions) thinned to about `points` points, for plotting."""
    values = sorted(samples)
    n = len(values)
    if n == 0:
        return [], []
    step = max(n // points, 1)
    xs: list[float] = []
    ys: list[float] = []
    for i in range(0, n, step):
        xs.append(values[i])
        ys.append((i + 1) / n)
    if xs[-1] != values[-1] or ys[-1] != 1.0:
        xs.append(values[-1])
        ys.append(1.0)
    return xs, ys
