"""The bench's handle on the native floor client (bench/floorclient: Go, franz-go), built by
`make bench` into the virtualenv's `bin/`: the Kafka floors' producer and consumer in a process
of its own, so that at thousands of records a second a floor measures the broker (and the
relay), not the bench's Python client. Same round trip as the Python floor: records of an
8-byte number and 280 bytes, paced open-loop, each timed from its intended send time to its
arrival; the producer idempotent, acks=all, linger 0, uncompressed, as Parley's are."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.harness.child import Child

BINARY = Path(sys.executable).with_name("floorclient")
# A run's answer is one line holding every latency (about 10 bytes each).
LINE_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """One run, as the client reports it (bench/floorclient/main.go, `Result`)."""

    sent: int
    failed: int
    missing: int
    send_window_s: float
    latency_us: list[int]
    send_lag_us: list[int]


class NativeClient:
    def __init__(
        self,
        bootstrap: str,
        produce: str,
        consume: str,
        partitions: int,
        fetch_max_wait_ms: int,
        padding: int,
    ) -> None:
        self._child = Child(
            "the native floor client",
            BINARY,
            *("-bootstrap", bootstrap, "-produce", produce, "-consume", consume),
            *("-partitions", str(partitions), "-fetch-max-wait-ms", str(fetch_max_wait_ms)),
            *("-padding", str(padding)),
            line_limit=LINE_LIMIT,
        )

    async def start(self) -> None:
        if not BINARY.exists():
            raise RuntimeError(
                f"the native floor client is not built ({BINARY}): `make bench` builds it "
                "(it needs Go), or run the floors with `--floor-client python`"
            )
        await self._child.start()

    async def run(self, rate: float, duration_s: float, drain_s: float, seq_base: int) -> Answer:
        """Send `rate` records/s for `duration_s`, and wait up to `drain_s` for the last."""
        request = f"run {rate:g} {duration_s:g} {drain_s:g} {seq_base}".encode()
        return Answer(**orjson.loads(await self._child.ask(request, duration_s + drain_s + 60.0)))

    async def stop(self) -> None:
        await self._child.stop()
