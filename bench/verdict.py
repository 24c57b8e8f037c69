"""One row of the summary table, shared by the report modules."""

from __future__ import annotations

from dataclasses import dataclass

TARGET_RATE = 1000.0
"""SPEC §6's latency figures are at 1,000 msgs/s; the floors are compared at the same rate."""


@dataclass
class Verdict:
    figure: str
    measured: str
    target: str
    ok: bool | None
    note: str = ""

    @property
    def mark(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.ok]


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
