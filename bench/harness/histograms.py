"""Latencies and durations as HdrHistograms of microseconds (3 significant digits: every value
within 0.1%), their summaries (count, percentiles, max, mean) and CDF points for the report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

HIGHEST_US = 3_600_000_000  # an hour: far above any bound of the bench
DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)

Histogram = Any
"""hdrh.histogram.HdrHistogram (the package has no type hints)."""


def new() -> Histogram:
    return HdrHistogram(1, HIGHEST_US, DIGITS)


def of(values_us: Iterable[int]) -> Histogram:
    """The histogram of these microsecond values (clamped to its range)."""
    histogram = new()
    for value in values_us:
        histogram.record_value(min(max(value, 1), HIGHEST_US))
    return histogram


def of_ns(values_ns: Iterable[int]) -> Histogram:
    return of(v // 1000 for v in values_ns)


def of_seconds(values_s: Iterable[float]) -> Histogram:
    return of(round(v * 1e6) for v in values_s)


@dataclass(frozen=True)
class Summary:
    """Count, percentiles, max and mean, in ms (latencies) or s (durations); None if empty."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    p99_9: float | None
    max: float | None
    mean: float | None


NO_SAMPLES = Summary(0, None, None, None, None, None, None)


def summary(histogram: Histogram, unit_us: float = 1000.0, digits: int = 3) -> Summary:
    """In ms by default; `seconds` for durations."""
    count = int(histogram.get_total_count())
    if count == 0:
        return NO_SAMPLES

    def at(value: float) -> float:
        return round(value / unit_us, digits)

    p50, p90, p99, p99_9 = (at(histogram.get_value_at_percentile(p)) for p in PERCENTILES)
    return Summary(
        count, p50, p90, p99, p99_9, at(histogram.get_max_value()), at(histogram.get_mean_value())
    )


def seconds(histogram: Histogram) -> Summary:
    return summary(histogram, 1e6, 4)


@dataclass(frozen=True)
class Cdf:
    """Points of the cumulative distribution: value (ms or s), fraction of samples ≤ it."""

    x: list[float]
    y: list[float]


def cdf(histogram: Histogram, points: int, unit_us: float = 1000.0) -> Cdf:
    """The distribution at each distinct recorded value, thinned to about `points` points."""
    total = int(histogram.get_total_count())
    if total == 0:
        return Cdf([], [])
    xs: list[float] = []
    ys: list[float] = []
    seen = 0
    for item in histogram.get_recorded_iterator():
        seen += int(item.count_at_value_iterated_to)
        xs.append(round(int(item.value_iterated_to) / unit_us, 3))
        ys.append(round(seen / total, 5))
    step = max(len(xs) // points, 1)
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return Cdf([xs[i] for i in keep], [ys[i] for i in keep])
