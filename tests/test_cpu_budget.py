"""The CPU a 1:1 message costs the stack stays near the figure recorded in the repository
(bench/cpu_budget.json): a short throughput step through the shared stack, every message
delivered exactly once and in order, and the CPU time the stack's processes spent over the step
(gateway, processor, Kafka's JVM, Postgres and its backends) divided by the messages delivered.
It fails when that figure more than doubles: CPU time, not wall time, so a slower machine does
not fail it, but code that does twice the work per message does. A busy machine moves the figure
some, and so does a JVM still compiling (up to 3x between runs of the same code: see
bench/README.md). `make bench` measures the same figure at SPEC §6's rates (the "CPU per 1:1 message" verdict)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from devstack.embedded.kafka import EmbeddedKafka
from parley_client import Login, Session
from tests.conftest import Api, before_mark, marked
from tests.stack import Stack

BUDGET_FILE = Path(__file__).resolve().parent.parent / "bench" / "cpu_budget.json"
ALLOWED_FACTOR = 2.0
"""The test fails above this multiple of the recorded figure."""
PAIRS = 10
MESSAGES = 2_000
"""In all, MESSAGES // PAIRS per pair."""
RATE = 250.0
"""Messages per second, all pairs together: well within what this stack sustains on a busy
two-core machine, so the step measures cost per message, not queueing."""
WARM_UP = 75
"""Messages per pair (3 s at RATE) delivered before the measured step: first-use costs (the
broker's JIT above all, on a stack just started; the members' caches, Postgres's plans) are
not the cost per message."""
IDLE_S = 1.0
"""The pause between the warm-up and the step, metered: the stack's idle CPU, reported (it
is part of the step's cost, not subtracted)."""
DELIVERY_TIMEOUT_S = 30.0


def budget() -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(BUDGET_FILE.read_text())
    return recorded


def cpu_seconds(proc: psutil.Process) -> float:
    """User and system CPU time of the process itself (its children's excluded: they are
    counted as processes of their own while they run)."""
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


async def postmaster(dsn: str) -> psutil.Process:
    """Postgres's postmaster, from `postmaster.pid` in its data directory (its first line)."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute("SELECT current_setting('data_directory')")).fetchone()
    assert row is not None
    pid = int((Path(row[0]) / "postmaster.pid").read_text().split("\n", 1)[0])
    return psutil.Process(pid)


def stack_processes(stack: Stack, kafka: EmbeddedKafka, pg: psutil.Process) -> dict[int, str]:
    """pid -> role of every process of the stack now running: the gateways and processors the
    fixture started (and is still running), Kafka's JVM, the postmaster; and each one's
    descendants (Postgres's backends, auxiliary processes), under its role."""
    roots: list[tuple[str, psutil.Process]] = [
        (p.role, psutil.Process(p.popen.pid))
        for p in stack.processes
        if p.popen.poll() is None and p.role in ("gateway", "processor")
    ]
    roots += [("broker", psutil.Process(kafka.process.pid)), ("postgres", pg)]
    out: dict[int, str] = {}
    for role, root in roots:
        out[root.pid] = role
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                out.setdefault(child.pid, role)
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (not idle, not waiting on I/O)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


class Meter:
    """CPU seconds of the stack's processes between `start` and `stop`, by role. A process that
    starts meanwhile counts from zero; one that ends meanwhile is lost (none should)."""

    def __init__(self, procs: dict[int, str]) -> None:
        self.procs = {pid: (role, psutil.Process(pid)) for pid, role in procs.items()}
        self.before: dict[int, float] = {}
        self.by_role: dict[str, float] = {}
        self.wall_s = 0.0

    def start(self) -> None:
        self.before = {pid: cpu_seconds(p) for pid, (_, p) in self.procs.items()}
        self._busy0, self._t0 = machine_busy(), time.monotonic()

    def cores(self) -> float:
        return sum(self.by_role.values()) / self.wall_s if self.wall_s else 0.0

    def stop(self) -> None:
        self.wall_s = time.monotonic() - self._t0
        self.machine_cores = (machine_busy() - self._busy0) / self.wall_s
        self.by_role = {}
        for pid, (role, proc) in self.procs.items():
            used = max(cpu_seconds(proc) - self.before.get(pid, 0.0), 0.0)
            self.by_role[role] = self.by_role.get(role, 0.0) + used


async def paced_sends(socket: Session, channel_id: str, texts: list[str], t0: float) -> None:
    """`texts` into the channel, one every PAIRS / RATE seconds from `t0`."""
    interval = PAIRS / RATE
    for i, text in enumerate(texts):
        delay = t0 + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the pacing of the step, not a wait for anything
        await socket.send_message(channel_id, text, client_msg_id=text)


async def step(pairs: list[tuple[Session, Session, str]], texts: dict[str, list[str]]) -> None:
    """Each pair's texts, paced (staggered across the pairs), until every one has reached both
    members' sockets."""
    t0 = time.monotonic() + 0.05
    stagger = 1.0 / RATE
    await asyncio.gather(
        *(paced_sends(s, ch, texts[ch], t0 + i * stagger) for i, (s, _, ch) in enumerate(pairs)),
        *(
            socket.collect_messages(
                ch, len(socket.messages(ch)) + len(texts[ch]), DELIVERY_TIMEOUT_S
            )
            for s, r, ch in pairs
            for socket in (s, r)
        ),
    )


def assert_exactly_once_in_order(socket: Session, channel_id: str, texts: list[str]) -> None:
    frames = before_mark(socket, channel_id)
    assert [f["text"] for f in frames] == texts, "not every message exactly once, in order"
    ids = [int(f["message_id"]) for f in frames]
    assert ids == sorted(set(ids)), "message ids not strictly increasing"


ROLES = ("gateway", "processor", "broker", "postgres")


def split(by_role: dict[str, float], messages: int) -> dict[str, int]:
    """µs of CPU per message by role, and `total`."""
    per = {role: round(1e6 * by_role.get(role, 0.0) / messages) for role in ROLES}
    per["total"] = round(1e6 * sum(by_role.values()) / messages)
    return per


@pytest.mark.cpu_budget
@pytest.mark.timeout(180)
async def test_cpu_per_one_to_one_message_at_most_twice_the_recorded_figure(
    api: Api, stack: Stack, kafka: EmbeddedKafka, postgres_dsn: str
) -> None:
    recorded = budget()
    assert (recorded["rate"], recorded["messages"]) == (RATE, MESSAGES), (
        f"{BUDGET_FILE.name} was recorded at another rate or size: record it again"
    )
    logins: list[Login] = await asyncio.gather(*(api.new_device("cpu") for _ in range(2 * PAIRS)))
    senders, receivers = logins[:PAIRS], logins[PAIRS:]
    channels = await asyncio.gather(
        *(api.direct(s, r.user_id) for s, r in zip(senders, receivers, strict=True))
    )
    sockets = await asyncio.gather(*(api.connect(login) for login in logins))
    pairs = list(zip(sockets[:PAIRS], sockets[PAIRS:], channels, strict=True))
    per_pair = MESSAGES // PAIRS
    warm = {ch: [f"w{n}-{i}" for i in range(WARM_UP)] for n, ch in enumerate(channels)}
    texts = {ch: [f"m{n}-{i}" for i in range(per_pair)] for n, ch in enumerate(channels)}

    await step(pairs, warm)
    procs = stack_processes(stack, kafka, await postmaster(postgres_dsn))
    idle = Meter(procs)
    idle.start()
    await asyncio.sleep(IDLE_S)  # the warm-up's acks and commits done; the idle stack metered
    idle.stop()
    meter = Meter(procs)
    meter.start()
    await step(pairs, texts)
    meter.stop()

    # A late duplicate would come before the mark.
    await asyncio.gather(*(marked(s, ch, r) for s, r, ch in pairs))
    for s, r, ch in pairs:
        for socket in (s, r):
            assert_exactly_once_in_order(socket, ch, [*warm[ch], *texts[ch]])
    delivered = sum(len(before_mark(r, ch)) - WARM_UP for _, r, ch in pairs)
    assert delivered == MESSAGES

    per = split(meter.by_role, delivered)
    limit = ALLOWED_FACTOR * float(recorded["cpu_us_per_message"])
    cores = meter.cores()
    report = (
        f"CPU per 1:1 message: {per['total']} µs (limit {limit:g} µs = {ALLOWED_FACTOR:g}x "
        f"the recorded {recorded['cpu_us_per_message']} µs, {recorded['recorded']}); "
        f"by process (µs/msg): "
        + ", ".join(f"{role} {us}" for role, us in per.items() if role != "total")
        + f"; {delivered:,} messages at {RATE:g}/s over {meter.wall_s:.1f} s, "
        f"{cores:.2f} cores of the stack (idle just before: {idle.cores():.3f}); the machine "
        f"busy {meter.machine_cores:.2f} of {psutil.cpu_count()} cores"
    )
    print("\n" + report)
    assert per["total"] <= limit, report
