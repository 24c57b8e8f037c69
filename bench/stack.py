"""The stack under test: `parley dev` started as a subprocess on free ports, or one that is
already running. Also finds its processes (for RSS and CPU accounting) and scans its logs."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import orjson
import psutil

READY_MARKER = "Parley ready:"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ROLES = ("gateway", "processor", "broker", "postgres", "cassandra")
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A free port whose successor is free too: the embedded Kafka listens on `port` and its
    KRaft controller on `port + 1` (the embedded Cassandra likewise, CQL and storage)."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and _port_is_free(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


def raise_nofile_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE := hard, in this process (children inherit it). Returns the limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux), so nothing outlives a killed bench."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _stack_preexec() -> None:
    """`parley dev` in a session of its own (the terminal's Ctrl-C reaches only the bench, which
    then stops the stack in order), SIGTERM if the bench dies, and the file limit raised."""
    os.setsid()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    die_with_parent()


def check_local(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to benchmark {url}: only 127.0.0.1 is allowed")


def get_json(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = orjson.loads(response.read())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return ""


def classify(proc: psutil.Process) -> str | None:
    line = _cmdline(proc)
    if "parley.cli gateway" in line or "parley gateway" in line:
        return "gateway"
    if "parley.cli processor" in line or "parley processor" in line:
        return "processor"
    # The embedded Kafka (and its one-off `kafka.tools.StorageTool format`) is a JVM.
    if "kafka.Kafka" in line or "kafka.tools.StorageTool" in line:
        return "broker"
    if "org.apache.cassandra.service.CassandraDaemon" in line:
        return "cassandra"
    try:
        name = proc.name()
    except (psutil.Error, OSError):
        return None
    if name.startswith("postgres") or line.startswith("postgres"):
        return "postgres"
    return None


@dataclass
class Stack:
    """What the bench talks to, and what it knows about the processes behind it."""

    http_url: str
    ws_url: str
    kafka_bootstrap: str | None
    owned: bool
    processor_url: str | None = None
    """The processor's web server (`/healthz`, `/metrics`); None for an external stack."""
    data_dir: Path | None = None
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    gateway_pid_override: int | None = None
    message_store: str = "postgres"
    notes: list[str] = field(default_factory=list)
    _tmp: Path | None = None
    _reader: threading.Thread | None = None
    _clock0: float = 0.0
    _verbose: bool = False

    # --- processes --------------------------------------------------------------------------

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The stack's processes by role (gateway, processor, broker, postgres, cassandra)."""
        roles: dict[str, list[psutil.Process]] = {role: [] for role in ROLES}
        seen: set[int] = set()

        def add(proc: psutil.Process, role: str | None = None) -> None:
            if proc.pid in seen:
                return
            role = role or classify(proc)
            if role is not None:
                seen.add(proc.pid)
                roles[role].append(proc)

        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.popen.pid).children(recursive=True):
                    add(child)
        postmaster = self._postmaster()
        if postmaster is not None:
            add(postmaster, "postgres")
            with contextlib.suppress(psutil.Error):
                for child in postmaster.children(recursive=True):
                    add(child, "postgres")
        if not roles["gateway"]:
            gateway = self.gateway_process()
            if gateway is not None:
                add(gateway, "gateway")
        return roles

    def _postmaster(self) -> psutil.Process | None:
        if self.data_dir is None:
            return None
        pidfile = self.data_dir / "postgres" / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            return psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return None

    def postgres_dsn(self) -> str | None:
        """The embedded Postgres, from its `postmaster.pid` (the port on line 4, the socket
        directory on line 5); None for a stack the bench did not start."""
        if self.data_dir is None:
            return None
        try:
            lines = (self.data_dir / "postgres" / "postmaster.pid").read_text().split("\n")
            port, socket_dir = int(lines[3]), lines[4].strip()
        except (OSError, ValueError, IndexError):
            return None
        return f"postgresql://postgres:@/postgres?host={socket_dir}&port={port}"

    def gateway_process(self) -> psutil.Process | None:
        """The ONE gateway: the child of `parley dev` running `parley.cli gateway`, or with
        `--url`, the process listening on the URL's port (or `--gateway-pid`)."""
        if self.gateway_pid_override is not None:
            with contextlib.suppress(psutil.Error):
                return psutil.Process(self.gateway_pid_override)
            return None
        if self.popen is not None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.popen.pid).children(recursive=True):
                    if "parley.cli gateway" in _cmdline(child):
                        return child
            return None
        port = urlsplit(self.http_url).port
        for proc in psutil.process_iter():
            try:
                for conn in proc.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                        return proc
            except (psutil.Error, OSError):
                continue
        return None

    def gateway_rss(self) -> int | None:
        proc = self.gateway_process()
        if proc is None:
            return None
        try:
            return int(proc.memory_info().rss)
        except psutil.Error:
            return None

    def gateway_connections(self) -> int | None:
        body = get_json(f"{self.http_url}/healthz")
        value = body.get("connections") if body else None
        return value if isinstance(value, int) else None

    # --- lifecycle --------------------------------------------------------------------------

    def stop(self, timeout_s: float = 90.0) -> None:
        """SIGTERM `parley dev` and wait: it stops the gateway, drains, stops the rest."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.notes.append(f"parley dev did not stop within {timeout_s:.0f}s; killed")
                with contextlib.suppress(OSError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
                postmaster = self._postmaster()
                if postmaster is not None:
                    with contextlib.suppress(psutil.Error):
                        postmaster.send_signal(signal.SIGINT)  # Postgres "fast" shutdown
        if self._reader is not None:
            self._reader.join(5)
        if self.popen.returncode not in (0, None):
            self.notes.append(f"parley dev exited with code {self.popen.returncode}")

    def cleanup(self, keep: bool) -> None:
        if self._tmp is not None and not keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _tee(
    stream: IO[bytes], log: IO[bytes], ready: threading.Event, echo: bool, clock0: float
) -> None:
    """Copy the stack's output to its log, each line stamped with the bench clock (seconds
    since the bench started), so problems can be matched to the phase they happened in."""
    for line in iter(stream.readline, b""):
        log.write(f"[{time.monotonic() - clock0:9.2f}s] ".encode() + line)
        log.flush()
        if READY_MARKER.encode() in line:
            ready.set()
        if echo:
            sys.stderr.write(line.decode(errors="replace"))
    log.close()


def start_dev_stack(
    clock0: float,
    timeout_s: float = 180.0,
    verbose: bool = False,
    data_dir: Path | None = None,
    message_store: str = "postgres",
) -> Stack:
    """Run `parley dev` on free ports in a temporary data dir (or in `data_dir`, which is kept);
    returns once it printed "Parley ready:". The send rate limit is raised so bench devices are
    never throttled."""
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    stack = Stack(
        http_url="",
        ws_url="",
        kafka_bootstrap=None,
        owned=True,
        data_dir=data_dir.resolve() if data_dir is not None else tmp / "data",
        log_path=tmp / "parley-dev.log",
        _tmp=tmp,
        _clock0=clock0,
        _verbose=verbose,
        message_store=message_store,
    )
    launch(stack, timeout_s)
    return stack


def launch(stack: Stack, timeout_s: float = 180.0) -> None:
    """Start `parley dev` for `stack` on free ports, in its data dir."""
    assert stack.data_dir is not None and stack.log_path is not None
    http_port, kafka_port, processor_port = free_port(), free_port_pair(), free_port()
    env = dict(os.environ)
    env.update(
        PARLEY_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        PARLEY_PROCESSOR_HTTP_PORT=str(processor_port),
        PARLEY_HTTP_HOST="127.0.0.1",
        PARLEY_SEND_RATE_PER_S="100000",
        PARLEY_SEND_BURST="100000",
        # Cheap password hashes: these stacks make thousands of accounts.
        PARLEY_ARGON2_TIME_COST="1",
        PARLEY_ARGON2_MEMORY_KIB="8192",
        PARLEY_ARGON2_PARALLELISM="1",
        PYTHONUNBUFFERED="1",
    )
    command = [
        sys.executable,
        "-m",
        "parley.cli",
        "dev",
        "--http-port",
        str(http_port),
        "--data-dir",
        str(stack.data_dir),
    ]
    if stack.message_store != "postgres":
        # An embedded Cassandra serves the CQL store, on free ports too.
        env["PARLEY_SCYLLA_PORT"] = str(free_port_pair())
        command += ["--message-store", stack.message_store]
    started = time.monotonic()
    popen = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_stack_preexec,
    )
    assert popen.stdout is not None
    ready = threading.Event()
    reader = threading.Thread(
        target=_tee,
        args=(popen.stdout, stack.log_path.open("ab"), ready, stack._verbose, stack._clock0),
        name="parley-dev-log",
        daemon=True,
    )
    reader.start()
    stack.http_url = f"http://127.0.0.1:{http_port}"
    stack.ws_url = f"ws://127.0.0.1:{http_port}/v1/ws"
    stack.kafka_bootstrap = f"127.0.0.1:{kafka_port}"
    stack.processor_url = f"http://127.0.0.1:{processor_port}"
    stack.popen = popen
    stack._reader = reader
    deadline = started + timeout_s
    while not ready.wait(0.2):
        if popen.poll() is not None or time.monotonic() > deadline:
            stack.stop(30)
            tail = stack.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"parley dev did not get ready (exit code {popen.returncode}); "
                f"log {stack.log_path}:\n{tail}"
            )
    stack.startup_s = time.monotonic() - started


def external_stack(url: str, kafka_bootstrap: str | None, gateway_pid: int | None) -> Stack:
    check_local(url)
    base = url.rstrip("/")
    parts = urlsplit(base)
    ws_url = f"ws://{parts.netloc}/v1/ws"
    if get_json(f"{base}/healthz") is None:
        raise SystemExit(f"{base}/healthz does not answer: is the stack running?")
    if kafka_bootstrap:
        check_local(f"tcp://{kafka_bootstrap}")
    return Stack(
        http_url=base,
        ws_url=ws_url,
        kafka_bootstrap=kafka_bootstrap,
        owned=False,
        gateway_pid_override=gateway_pid,
    )


# --- CPU accounting ----------------------------------------------------------------------------


def _cpu_seconds(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


@dataclass
class CpuSnapshot:
    at: float
    by_pid: dict[int, tuple[str, float]]
    system_busy: float


def _system_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def cpu_snapshot(stack: Stack) -> CpuSnapshot:
    by_pid: dict[int, tuple[str, float]] = {}
    for role, procs in stack.processes().items():
        for proc in procs:
            by_pid[proc.pid] = (role, _cpu_seconds(proc))
    me = psutil.Process()
    by_pid[me.pid] = ("bench", _cpu_seconds(me))
    stack_pids = set(by_pid)
    with contextlib.suppress(psutil.Error):
        for child in me.children(recursive=True):
            if child.pid not in stack_pids and (
                stack.popen is None or child.pid != stack.popen.pid
            ):
                by_pid.setdefault(child.pid, ("bench", _cpu_seconds(child)))
    if stack.popen is not None:
        with contextlib.suppress(psutil.Error):
            dev = psutil.Process(stack.popen.pid)
            by_pid[dev.pid] = ("parley-dev", _cpu_seconds(dev))
    return CpuSnapshot(time.monotonic(), by_pid, _system_busy())


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds used between two snapshots, by role, plus `other` (anything else on the
    machine, e.g. other tests) and the wall time."""
    used: dict[str, float] = {}
    for pid, (role, seconds) in after.by_pid.items():
        start = before.by_pid.get(pid, (role, 0.0))[1]
        used[role] = used.get(role, 0.0) + max(seconds - start, 0.0)
    total_known = sum(used.values())
    system = max(after.system_busy - before.system_busy, 0.0)
    out = {role: round(value, 2) for role, value in sorted(used.items())}
    out["other"] = round(max(system - total_known, 0.0), 2)
    out["machine_busy"] = round(system, 2)
    out["wall_s"] = round(after.at - before.at, 2)
    return out


# --- logs -------------------------------------------------------------------------------------

PROBLEM = re.compile(
    r"Traceback|\bERROR\b|\bCRITICAL\b|\bFATAL\b|\bPANIC\b|Exception|exited with|"
    r"not yet processed|killing it|Failed|error:",
)


# Postgres says this on every clean shutdown.
BENIGN = re.compile(r'background worker "logical replication launcher" \(PID \d+\) exited')


STAMP = re.compile(r"^\[\s*([0-9.]+)s\] ")

SERVICE_LOGS = ("kafka.log", "cassandra.log")
"""What `parley dev` writes next to its data: the embedded Kafka's and Cassandra's output."""


def _phase_at(t: float, phases: list[tuple[str, float, float]]) -> str:
    for name, start, end in phases:
        if start <= t <= end:
            return name
    return "between phases"


def scan_logs(
    stack: Stack, phases: list[tuple[str, float, float]], limit: int = 40
) -> dict[str, object]:
    """Problem lines in the `parley dev` output, the Kafka, Cassandra and Postgres logs; for
    the stamped `parley dev` output, also how many fell in each bench phase."""
    files: list[tuple[str, Path]] = []
    if stack.log_path is not None:
        files.append(("parley dev output", stack.log_path))
    if stack.data_dir is not None:
        for name in SERVICE_LOGS:
            files.append((name, stack.data_dir / name))
        pg_log = stack.data_dir / "postgres" / "log"
        if pg_log.is_file():
            files.append(("postgres log", pg_log))
    report: dict[str, object] = {}
    for name, path in files:
        if not path.is_file():
            continue
        counts: dict[str, int] = {}
        by_phase: dict[str, int] = {}
        samples: list[str] = []
        seen: set[str] = set()
        lines = 0
        with path.open(errors="replace") as handle:
            for line in handle:
                lines += 1
                match = PROBLEM.search(line)
                if match is None or BENIGN.search(line):
                    continue
                key = match.group(0)
                counts[key] = counts.get(key, 0) + 1
                stamp = STAMP.match(line)
                if stamp is not None and key in ("ERROR", "Traceback", "CRITICAL"):
                    phase = _phase_at(float(stamp.group(1)), phases)
                    by_phase[phase] = by_phase.get(phase, 0) + 1
                bare = STAMP.sub("", line).rstrip()[:300]
                if len(samples) < limit and bare not in seen:
                    seen.add(bare)
                    samples.append(line.rstrip()[:300])
        report[name] = {
            "path": str(path),
            "lines": lines,
            "matches": counts,
            "errors_by_phase": by_phase,
            "samples": samples,
        }
    return report


def copy_logs(stack: Stack, dest: Path) -> list[str]:
    """Keep the stack's logs next to the results (the temp data dir is removed)."""
    copied: list[str] = []
    sources: list[tuple[Path, str]] = []
    if stack.log_path is not None:
        sources.append((stack.log_path, "parley-dev.log"))
    if stack.data_dir is not None:
        sources += [(stack.data_dir / name, name) for name in SERVICE_LOGS]
        pg_log = stack.data_dir / "postgres" / "log"
        if pg_log.is_file():
            sources.append((pg_log, "postgres.log"))
    for src, name in sources:
        if src.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / name
            # The JVM logs can be large; keep the last 2 MB of each.
            size = src.stat().st_size
            with src.open("rb") as fin, target.open("wb") as fout:
                if size > 2_000_000:
                    fin.seek(size - 2_000_000)
                shutil.copyfileobj(fin, fout)
            copied.append(str(target))
    return copied
