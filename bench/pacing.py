"""Open-loop pacing: item i is due at `start + i / rate`, fixed in advance, so a slow system
cannot slow the offered load down (no coordinated omission). Latency is measured from each
item's intended time, whenever it actually went out."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    def __init__(self, rate: float, lead_ns: int) -> None:
        self.period_ns = 1e9 / rate
        self.start = time.monotonic_ns() + lead_ns

    async def wait(self, i: int) -> int:
        """Sleep until item `i` is due (not at all when behind); returns its intended time."""
        intended = self.start + int(i * self.period_ns)
        delay = intended - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        return intended
