"""Real processes for tests: the embedded broker and Postgres, processors and gateways."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from parley.dev import wait_healthy
from parley.embedded.process import free_port, wait_for_port
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

    def start_gateway(self, **overrides: str) -> Process:
        port = free_port()
        env = {**self.env, "PARLEY_HTTP_PORT": str(port), **overrides}
        process = self._spawn("gateway", env, port)
        wait_for_port("127.0.0.1", port, 60)
        wait_healthy(f"{process.url}/healthz", process.popen, 60)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


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
        # Cheap password hashes: these stacks make thousands of accounts.
        PARLEY_ARGON2_TIME_COST="1",
        PARLEY_ARGON2_MEMORY_KIB="8192",
        PARLEY_ARGON2_PARALLELISM="1",
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
    **overrides: str,
) -> subprocess.Popen[str]:
    """`parley dev` on these ports; returns once it printed its ready line."""
    env = dict(os.environ)
    env.update(
        PARLEY_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        PARLEY_PROCESSOR_HTTP_PORT=str(processor_port),
        PARLEY_PROCESSOR_SESSION_TIMEOUT_S="3",
        **overrides,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parley.cli",
            "dev",
            "--http-port",
            str(http_port),
            "--data-dir",
            str(data_dir),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 180
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "Parley ready:" in line:  # the processor's terminal codes may precede it
            assert line[line.index("Parley ready:") :].strip() == (
                f"Parley ready: http://127.0.0.1:{http_port}  ws://127.0.0.1:{http_port}/v1/ws"
            )
            # Keep reading what the stack prints, so a full pipe never blocks a child.
            out = (data_dir.parent / f"{data_dir.name}-stdout.log").open("a")
            threading.Thread(target=_copy_lines, args=(process.stdout, out), daemon=True).start()
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    process.stdout.close()
    raise AssertionError("parley dev did not print its ready line")


def _copy_lines(source: IO[str], sink: IO[str]) -> None:
    with source, sink:
        for line in source:
            sink.write(line)
            sink.flush()
