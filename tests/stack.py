"""Real processes for tests: the embedded broker and Postgres, processors and gateways."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack import launcher
from devstack.embedded.process import free_port, wait_for_port
from devstack.launcher import DevStack
from devstack.supervisor import wait_healthy
from schemas.settings import Settings


@dataclass
class Process:
    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no goodbye."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]
    settings: Settings
    processes: list[Process] = field(default_factory=list)

    def _spawn(self, role: str, env: dict[str, str], port: int | None = None) -> Process:
        log = self.workdir / f"{role}-{len(self.processes)}.log"
        with log.open("ab") as out:  # the child has its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", "parley.cli", role],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(role, popen, log, port)
        self.processes.append(process)
        return process

    def start_processor(self, **overrides: str) -> Process:
        """A processor worker; returns once it owns partitions and its pipeline runs."""
        port = free_port()
        env = {**self.env, "PARLEY_PROCESSOR_HTTP_PORT": str(port), **overrides}
        process = self._spawn("processor", env, port)
        wait_healthy(f"{process.url}/healthz", process.popen, 90)
        return process

    def start_gateway(self, port: int | None = None, **overrides: str) -> Process:
        """A gateway on `port` (a free one if None: a restarted gateway may take its old one)."""
        port = port or free_port()
        env = {**self.env, "PARLEY_HTTP_PORT": str(port), **overrides}
        process = self._spawn("gateway", env, port)
        wait_for_port("127.0.0.1", port, 60)
        wait_healthy(f"{process.url}/healthz", process.popen, 60)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


# Every test client signs up and logs in from 127.0.0.1, thousands of times a run: the
# throttles per address and per account are lifted (tests/test_throttling.py and
# tests/test_login_throttling.py restore them).
MANY_ACCOUNTS = {
    "PARLEY_SIGNUPS_PER_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ACCOUNT_ADDRESS": "1000000",
    "PARLEY_LOGINS_PER_ACCOUNT": "1000000",
}


def base_env(bootstrap: str, dsn: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PARLEY_KAFKA_BOOTSTRAP=bootstrap,
        PARLEY_POSTGRES_DSN=dsn,
        PARLEY_DATA_DIR=str(workdir / "data"),
        PARLEY_HELLO_TIMEOUT_S="1",
        # Fast failover for crash tests; loose limits so tests can send quickly.
        PARLEY_PROCESSOR_SESSION_TIMEOUT_S="3",
        PARLEY_HEARTBEAT_TIMEOUT_S="4",
        PARLEY_PRESENCE_TICK_S="0.2",
        PARLEY_SEND_RATE_PER_S="10000",
        PARLEY_SEND_BURST="10000",
        # Tests poll search until a message is indexed (tests/test_search_limits.py runs a
        # gateway with the default search limits).
        PARLEY_SEARCH_RATE_PER_S="10000",
        PARLEY_SEARCH_BURST="10000",
        PARLEY_SEARCH_CONCURRENCY="1000",
        PARLEY_SEARCH_PER_USER="1000",
        # Cheap password hashes: these stacks make thousands of accounts.
        PARLEY_ARGON2_TIME_COST="1",
        PARLEY_ARGON2_MEMORY_KIB="8192",
        PARLEY_ARGON2_PARALLELISM="1",
        **MANY_ACCOUNTS,
    )
    return env


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def start_dev(
    data_dir: Path,
    http_port: int,
    broker_port: int,
    processor_port: int,
    *args: str,
    timeout_s: float = 180.0,
    **overrides: str,
) -> DevStack:
    """`parley dev` on these ports, with a processor session timeout short enough for tests."""
    return launcher.start_dev(
        data_dir,
        *args,
        env={"PARLEY_PROCESSOR_SESSION_TIMEOUT_S": "3", **MANY_ACCOUNTS, **overrides},
        http_port=http_port,
        kafka_port=broker_port,
        processor_port=processor_port,
        timeout_s=timeout_s,
    )
