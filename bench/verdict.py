"""One row of the summary table, shared by the report modules."""

from __future__ import annotations

from dataclasses import dataclass


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
