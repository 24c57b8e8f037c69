"""Open-loop pacing: item i is due at `start + i / rate`, fixed in advance, so a slow system
cannot slow the offered load down (no coordinated omission). Latency is measured from each
item's intended time, whenever it actually went out.

The pacer also keeps its own error, the `send lag`: how late each item was released compared
with its schedule (timer slack, a busy event loop, the previous send still being written). A
latency figure is only as good as this: when the lag's p99 nears the latency's, the client,
not the system under test, made the figure."""

from __future__ import annotations

import asyncio
import time

from bench.harness import histograms
from bench.harness.histograms import Summary


class Pacer:
    def __init__(self, rate: float, lead_ns: int) -> None:
        self.period_ns = 1e9 / rate
        self.start = time.monotonic_ns() + lead_ns
        self.lag_us: list[int] = []

    async def wait(self, i: int) -> int:
        """Sleep until item `i` is due (not at all when behind); returns its intended time,
        and records how late it is released."""
        intended = self.start + int(i * self.period_ns)
        delay = intended - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        self.lag_us.append(max(time.monotonic_ns() - intended, 0) // 1000)
        return intended

    def lag(self) -> Summary:
        """The send lag (ms): p50, p99 and max of how late each item left its schedule."""
        return histograms.summary(histograms.of(self.lag_us))
