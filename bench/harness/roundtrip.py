"""What every floor shares: an open-loop paced run of numbered records (send i due at
`start + i / rate`), each timed from its intended send time to its arrival back at the bench,
as Parley's own latency runs are, so that a floor and a Parley figure at the same rate are
comparable. A floor says how it sends and how arrivals reach `arrived`; this runs the pacing,
the drain and the summary."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bench.harness import histograms
from bench.harness.load import CDF_POINTS
from bench.harness.pacing import Pacer
from bench.harness.progress import bar as progress_bar
from bench.harness.results import FloorRun


class RoundTrip:
    label = "floor"
    kind = "idempotent"

    def __init__(self) -> None:
        self._t0: dict[int, int] = {}
        self._sink: list[int] = []
        self._target = 0
        self._done = asyncio.Event()
        self.errors = 0
        """Records whose send failed during the current run."""

    # --- what a floor provides --------------------------------------------------------------

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def _begin(self) -> None:
        """Before a run's first send."""

    async def _send(self, seq: int) -> None:
        raise NotImplementedError

    async def _end(self) -> None:
        """After the last send, before the drain: wait for what the sends left in flight."""

    async def _describe(self, row: FloorRun) -> None:
        """After the drain: what the floor adds to the row."""

    # --- shared -----------------------------------------------------------------------------

    def arrived(self, seq: int, now_ns: int) -> None:
        """Record `seq` came back at `now_ns` (ignored if it is not awaited: a warm-up's)."""
        t0 = self._t0.pop(seq, None)
        if t0 is None:
            return
        self._sink.append(now_ns - t0)
        if len(self._sink) >= self._target:
            self._done.set()

    def failed(self, seq: int) -> None:
        """Record `seq` could not be sent: it is not awaited."""
        self.errors += 1
        self._t0.pop(seq, None)

    async def run(
        self, rate: float, duration_s: float, drain_s: float, seq_base: int
    ) -> tuple[FloorRun, histograms.Histogram]:
        """Send `rate` records/s for `duration_s` (scheduled at absolute times) and measure
        each from its intended send time to its arrival."""
        count = max(int(rate * duration_s), 1)
        sink: list[int] = []
        self._sink, self._target, self.errors = sink, count, 0
        self._done.clear()
        await self._begin()
        pacer = Pacer(rate, 20_000_000)
        start = pacer.start
        sent = 0
        with progress_bar(count, f"{self.label} @{rate:g}/s", "msg") as bar:
            last_bar = 0
            while sent < count:
                intended = await pacer.wait(sent)
                seq = seq_base + sent
                self._t0[seq] = intended
                await self._send(seq)
                sent += 1
                if sent - last_bar >= max(count // 50, 1):
                    bar.update(sent - last_bar)
                    last_bar = sent
            bar.update(sent - last_bar)
            await self._end()
        end = time.monotonic_ns()
        deadline = time.monotonic() + drain_s
        self._target = sent - self.errors
        if len(sink) < self._target:
            self._done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), max(deadline - time.monotonic(), 0))
        missing = sent - self.errors - len(sink)
        for seq in range(seq_base, seq_base + sent):
            self._t0.pop(seq, None)
        latency = histograms.of_ns(sink)
        window_s = (end - start) / 1e9
        row = self.row(rate, sent, window_s, self.errors, missing, pacer.lag(), latency)
        await self._describe(row)
        return row, latency

    def row(
        self,
        rate: float,
        sent: int,
        window_s: float,
        failed: int,
        missing: int,
        send_lag: histograms.Summary,
        latency: histograms.Histogram,
    ) -> FloorRun:
        """A run's row: what went out, what never came back, and how long the rest took."""
        return FloorRun(
            scenario=self.label,
            producer=self.kind,
            offered_per_s=rate,
            sent=sent,
            send_window_s=round(window_s, 3),
            send_failed=failed,
            missing=missing,
            send_lag_ms=send_lag,
            latency_ms=histograms.summary(latency),
            cdf_ms=histograms.cdf(latency, CDF_POINTS),
        )
