"""The stack under test, as the bench sees it: a `parley dev` it started (through
`parley.devstack`) or one already running at `--url`, and its processes by role, for the RSS
and CPU accounting."""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from devstack.embedded.process import free_port_pair
from devstack.launcher import DevStack, start_dev
from parley_client import ws_url_of

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ROLES = ("gateway", "processor", "broker", "postgres", "cassandra")

BENCH_ENV = {
    # The pipeline is measured, not the per-device throttle.
    "PARLEY_SEND_RATE_PER_S": "100000",
    "PARLEY_SEND_BURST": "100000",
    # The idle sockets share a device token, `--sockets-per-user` of them (40; the default
    # cap is 8 per device): the gateway's memory per socket does not depend on whose it is.
    "PARLEY_MAX_SOCKETS_PER_DEVICE": "100000",
    # A presence.subscribe costs 50 frames of the device's bucket (burst 200, 50/s): with
    # `--presence-sockets-per-user` above 4, a churned user's sockets, all reconnecting and
    # subscribing at once, would be refused. Heartbeats stay far below either default.
    "PARLEY_FRAME_RATE_PER_S": "100000",
    "PARLEY_FRAME_BURST": "100000",
    # Cheap password hashes: the bench makes thousands of accounts.
    "PARLEY_ARGON2_TIME_COST": "1",
    "PARLEY_ARGON2_MEMORY_KIB": "8192",
    "PARLEY_ARGON2_PARALLELISM": "1",
    # Every benchmark client signs up and logs in from 127.0.0.1.
    "PARLEY_SIGNUPS_PER_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ACCOUNT": "1000000",
    "PARLEY_MAX_WAITING_HASHES": "100000",
}


def raise_nofile_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE := hard, in this process (children inherit it). Returns the limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def check_local(url: str) -> None:
    if (urlsplit(url).hostname or "") not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to benchmark {url}: only 127.0.0.1 is allowed")


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


def _parents_role(proc: psutil.Process) -> str | None:
    """The role of a process the stack's own started (a gateway's or a processor's search
    process, storage/search/tokeniser.py): its parent's, whose work it does."""
    with contextlib.suppress(psutil.Error):
        parent = proc.parent()
        if parent is not None:
            return classify(parent)
    return None


@dataclass
class Stack:
    """What the bench talks to, and what it knows about the processes behind it."""

    http_url: str
    ws_url: str
    kafka_bootstrap: str | None
    processor_url: str | None = None
    """The processor's web server (`/healthz`, `/metrics`); None for an external stack."""
    dev: DevStack | None = None
    """The `parley dev` the bench started; None for an external stack."""
    gateway_pid_override: int | None = None
    notes: list[str] = field(default_factory=list)
    _tmp: Path | None = None

    @property
    def owned(self) -> bool:
        return self.dev is not None

    @property
    def data_dir(self) -> Path | None:
        return self.dev.data_dir if self.dev is not None else None

    def _dev_children(self) -> list[psutil.Process]:
        if self.dev is None or self.dev.process.poll() is not None:
            return []
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.dev.process.pid).children(recursive=True)
        return []

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The stack's processes by role (gateway, processor, broker, postgres, cassandra)."""
        roles: dict[str, list[psutil.Process]] = {role: [] for role in ROLES}
        seen: set[int] = set()

        def add(proc: psutil.Process, role: str | None) -> None:
            if proc.pid not in seen and role is not None:
                seen.add(proc.pid)
                roles[role].append(proc)

        for child in self._dev_children():
            add(child, classify(child) or _parents_role(child))
        # Postgres is a daemon of its own, not a child of `parley dev`.
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
        pid = self.dev.postmaster_pid() if self.dev is not None else None
        with contextlib.suppress(psutil.Error):
            return psutil.Process(pid) if pid is not None else None
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
        if self.dev is not None:
            return next((c for c in self._dev_children() if classify(c) == "gateway"), None)
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

    def stop(self, timeout_s: float = 90.0) -> None:
        """Stop the `parley dev` the bench started (in order: see `DevStack.stop`)."""
        if self.dev is None:
            return
        code = self.dev.stop(timeout_s)
        if code == -signal.SIGKILL:
            self.notes.append(f"parley dev did not stop within {timeout_s:.0f}s; killed")
        elif code != 0:
            self.notes.append(f"parley dev exited with code {code}")

    def cleanup(self, keep: bool) -> None:
        if self._tmp is not None and not keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


def start_stack(
    clock0: float, verbose: bool, data_dir: Path | None, message_store: str, cluster: bool = False
) -> Stack:
    """`parley dev` on free ports, in a temporary data dir (or in `data_dir`, which is kept);
    with `cluster`, `parley dev --cluster`: three Kafka brokers (and with scylla three
    Cassandra nodes) on 127.0.0.1-3. Each line of its output is stamped with the bench clock
    (seconds since the bench started), so problems can be matched to the phase they happened
    in."""
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    args: list[str] = ["--cluster"] if cluster else []
    env = dict(BENCH_ENV)
    if message_store != "postgres":
        # An embedded Cassandra serves the CQL store, on free ports too.
        env["PARLEY_SCYLLA_PORT"] = str(free_port_pair())
        args += ["--message-store", message_store]
    dev = start_dev(
        data_dir.resolve() if data_dir is not None else tmp / "data",
        *args,
        env=env,
        log_path=tmp / "parley-dev.log",
        stamp=lambda: f"[{time.monotonic() - clock0:9.2f}s] ",
        echo=verbose,
    )
    return Stack(dev.http_url, dev.ws_url, dev.kafka_bootstrap, dev.processor_url, dev, _tmp=tmp)


def external_stack(url: str, kafka_bootstrap: str | None, gateway_pid: int | None) -> Stack:
    check_local(url)
    base = url.rstrip("/")
    try:
        httpx.get(f"{base}/healthz", timeout=2, trust_env=False).raise_for_status()
    except httpx.HTTPError:
        raise SystemExit(f"{base}/healthz does not answer: is the stack running?") from None
    if kafka_bootstrap:
        check_local(f"tcp://{kafka_bootstrap}")
    return Stack(base, ws_url_of(base), kafka_bootstrap, gateway_pid_override=gateway_pid)
