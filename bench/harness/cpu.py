"""CPU accounting per process role: the stack's processes (gateway, processor, broker,
Postgres, Cassandra), `parley dev` itself, the bench (the load generator) with its workers, the
floors' own servers (`floor`: their relays and echo server), and `other` (the rest of the
machine: someone else's test run, say). From psutil's per-process CPU times."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import psutil

from bench.harness.stack import ROLES, Stack


def _cpu_seconds(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


FLOOR_MODULES = ("bench.scenarios.relay", "bench.scenarios.echo_server")


def _bench_role(child: psutil.Process) -> str:
    """A child of the bench: a floor's own server (its relay, its echo server), which stands
    in for the stack and is not load generation, or else the load generator (`bench`)."""
    with contextlib.suppress(psutil.Error):
        if any(module in child.cmdline() for module in FLOOR_MODULES):
            return "floor"
    return "bench"


def _system_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclass(frozen=True)
class Snapshot:
    at: float
    by_pid: dict[int, tuple[str, float]]
    """pid -> (role, CPU seconds so far)."""
    system_busy: float


def snapshot(stack: Stack) -> Snapshot:
    by_pid: dict[int, tuple[str, float]] = {}
    for role, procs in stack.processes().items():
        for proc in procs:
            by_pid[proc.pid] = (role, _cpu_seconds(proc))
    me = psutil.Process()
    by_pid[me.pid] = ("bench", _cpu_seconds(me))
    dev_pid = stack.dev.process.pid if stack.dev is not None else None
    with contextlib.suppress(psutil.Error):
        for child in me.children(recursive=True):
            if child.pid not in by_pid and child.pid != dev_pid:
                by_pid[child.pid] = (_bench_role(child), _cpu_seconds(child))
    if dev_pid is not None:
        with contextlib.suppress(psutil.Error):
            by_pid[dev_pid] = ("parley-dev", _cpu_seconds(psutil.Process(dev_pid)))
    return Snapshot(time.monotonic(), by_pid, _system_busy())


@dataclass(frozen=True)
class Used:
    """CPU seconds used between two snapshots, by role, over `wall_s` seconds."""

    by_role: dict[str, float]
    """Every role seen, and `other`: what the rest of the machine used."""
    machine_busy: float
    wall_s: float

    def cores(self) -> dict[str, float]:
        """By role, and `machine`, in cores."""
        if self.wall_s <= 0:
            return {"machine": 0.0}
        out = {role: round(s / self.wall_s, 2) for role, s in self.by_role.items()}
        out["machine"] = round(self.machine_busy / self.wall_s, 2)
        return out


def used(before: Snapshot, after: Snapshot) -> Used:
    by_role: dict[str, float] = {}
    for pid, (role, seconds) in after.by_pid.items():
        start = before.by_pid.get(pid, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + max(seconds - start, 0.0)
    known = sum(by_role.values())
    system = max(after.system_busy - before.system_busy, 0.0)
    out = {role: round(value, 2) for role, value in sorted(by_role.items())}
    out["other"] = round(max(system - known, 0.0), 2)
    return Used(out, round(system, 2), round(after.at - before.at, 2))


@dataclass(frozen=True)
class Cost:
    """What a run cost the box: cores by role, and CPU µs per message sent by role, net of
    what each process uses idle (what the box must supply per message); and the stack's CPU
    per delivery, gross."""

    wall_s: float
    cores: dict[str, float]
    cpu_us_per_send: dict[str, int]
    stack_us_per_delivery: dict[str, int] = field(default_factory=dict)
    """CPU µs per delivery of each process of the stack (gateway, processor, broker, Postgres,
    Cassandra), and `total`: all their CPU over the run and its drain, idle use included (as
    tests/test_cpu_budget.py measures it), divided by the deliveries made. Neither the load
    generator nor `parley dev` itself nor the rest of the machine. For 1:1, a delivery is a
    message; SPEC §6's "CPU per 1:1 message"."""


def cost(use: Used, sends: int, idle: dict[str, float], deliveries: int = 0) -> Cost:
    per_send: dict[str, int] = {}
    if sends:
        for role, seconds in use.by_role.items():
            if role != "other":
                net = max(seconds - idle.get(role, 0.0) * use.wall_s, 0.0)
                per_send[role] = round(1e6 * net / sends)
        per_send["total"] = sum(per_send.values())
    per_delivery: dict[str, int] = {}
    if deliveries:
        stack = {role: use.by_role[role] for role in ROLES if role in use.by_role}
        per_delivery = {role: round(1e6 * s / deliveries) for role, s in stack.items()}
        per_delivery["total"] = round(1e6 * sum(stack.values()) / deliveries)
    return Cost(use.wall_s, use.cores(), per_send, per_delivery)


def work_seconds(stack: Stack) -> float:
    """CPU seconds so far of the gateway and processor processes."""
    roles = stack.processes()
    return sum(_cpu_seconds(p) for role in ("gateway", "processor") for p in roles[role])


async def idle_cores(stack: Stack, seconds: float) -> dict[str, float]:
    """Cores each role of the stack uses over `seconds` (sleeping meanwhile)."""
    procs = stack.processes()

    def snap() -> dict[str, float]:
        return {role: sum(_cpu_seconds(p) for p in group) for role, group in procs.items() if group}

    before, t0 = snap(), time.monotonic()
    await asyncio.sleep(seconds)
    after, t1 = snap(), time.monotonic()
    return {r: round((after[r] - before.get(r, 0.0)) / (t1 - t0), 3) for r in after}
