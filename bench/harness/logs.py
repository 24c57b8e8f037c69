"""The stack's logs: problem lines in the `parley dev` output and the Kafka, Cassandra and
Postgres logs (counted by bench phase where the line is stamped), and a copy kept next to the
results (the temporary data dir is removed)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

PROBLEM = re.compile(
    r"Traceback|\bERROR\b|\bCRITICAL\b|\bFATAL\b|\bPANIC\b|Exception|exited with|"
    r"not yet processed|killing it|Failed|error:",
)
BENIGN = re.compile(r'background worker "logical replication launcher" \(PID \d+\) exited')
"""Postgres says this on every clean shutdown."""
STAMP = re.compile(r"^\[\s*([0-9.]+)s\] ")
SERVICE_LOGS = (
    "kafka.log",
    "cassandra.log",
    *(f"{service}-{i}.log" for service in ("kafka", "cassandra") for i in (1, 2, 3)),
)
"""What `parley dev` writes next to its data: the embedded Kafka's and Cassandra's output (of
each node, with `--cluster`)."""
KEEP_BYTES = 2_000_000
"""The JVM logs can be large: the last 2 MB of each is kept."""


@dataclass
class LogScan:
    path: str
    lines: int = 0
    matches: dict[str, int] = field(default_factory=dict)
    errors_by_phase: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)


Phase = tuple[str, float, float]
"""A bench phase: its name, and its start and end in seconds of the bench clock."""


def stack_logs(dev_log: Path | None, data_dir: Path | None) -> dict[str, Path]:
    """The logs there are, by name: `parley dev`'s output, Kafka's, Cassandra's, Postgres's."""
    found: dict[str, Path] = {}
    if dev_log is not None:
        found["parley-dev.log"] = dev_log
    if data_dir is not None:
        for name in SERVICE_LOGS:
            found[name] = data_dir / name
        found["postgres.log"] = data_dir / "postgres" / "log"
    return {name: path for name, path in found.items() if path.is_file()}


def _phase_at(t: float, phases: list[Phase]) -> str:
    return next((name for name, start, end in phases if start <= t <= end), "between phases")


def scan(path: Path, phases: list[Phase], limit: int = 40) -> LogScan:
    out = LogScan(str(path))
    seen: set[str] = set()
    with path.open(errors="replace") as handle:
        for line in handle:
            out.lines += 1
            match = PROBLEM.search(line)
            if match is None or BENIGN.search(line):
                continue
            key = match.group(0)
            out.matches[key] = out.matches.get(key, 0) + 1
            stamp = STAMP.match(line)
            if stamp is not None and key in ("ERROR", "Traceback", "CRITICAL"):
                phase = _phase_at(float(stamp.group(1)), phases)
                out.errors_by_phase[phase] = out.errors_by_phase.get(phase, 0) + 1
            bare = STAMP.sub("", line).rstrip()[:300]
            if len(out.samples) < limit and bare not in seen:
                seen.add(bare)
                out.samples.append(line.rstrip()[:300])
    return out


def copy(logs: dict[str, Path], dest: Path) -> list[str]:
    copied: list[str] = []
    for name, src in logs.items():
        dest.mkdir(parents=True, exist_ok=True)
        size = src.stat().st_size
        with src.open("rb") as fin, (dest / name).open("wb") as fout:
            if size > KEEP_BYTES:
                fin.seek(size - KEEP_BYTES)
            shutil.copyfileobj(fin, fout)
        copied.append(str(dest / name))
    return copied
