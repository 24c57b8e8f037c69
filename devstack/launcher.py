"""`parley dev` run as a subprocess, on free ports: the stack the tests and the benchmarks start.

One launcher for both, so that they run the stack exactly as `make dev` does (same start order,
same supervision, same orderly stop) and not a copy of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devstack.embedded.process import free_port, free_port_pair, supervised_stack

READY = "Parley ready:"


@dataclass
class DevStack:
    """A running `parley dev`: the supervisor process, its ports, data dir and output."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    http_port: int
    kafka_port: int
    processor_port: int
    log_path: Path
    """Everything `parley dev` printed (stdout and stderr), one line at a time."""
    startup_s: float
    _reader: threading.Thread

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/v1/ws"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def processor_url(self) -> str:
        """The first processor's web server (`/healthz`, `/metrics`)."""
        return f"http://127.0.0.1:{self.processor_port}"

    def stop(self, timeout_s: float = 90.0) -> int:
        """SIGTERM, and wait: `parley dev` stops its gateways, processors, Kafka and Postgres in
        that order. Past `timeout_s`, SIGKILL to its whole session, and Postgres (a daemon that
        outlives it) gets a fast shutdown. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
                pid = self.postmaster_pid()
                if pid is not None:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGINT)
        self._reader.join(5)
        return self.process.returncode

    def postmaster_pid(self) -> int | None:
        """The embedded Postgres's pid (a daemon, not a child of `parley dev`), from the first
        line of its `postmaster.pid`."""
        try:
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split("\n")[0])
        except (OSError, ValueError):
            return None


def start_dev(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    http_port: int | None = None,
    kafka_port: int | None = None,
    processor_port: int | None = None,
    log_path: Path | None = None,
    stamp: Callable[[], str] | None = None,
    echo: bool = False,
    timeout_s: float = 180.0,
) -> DevStack:
    """`parley dev --http-port … --data-dir data_dir *args`, with `env` over this process's
    environment, on the given ports or free ones (Kafka's KRaft controller takes
    `kafka_port + 1`). Returns once it printed its ready line; raises RuntimeError (after
    stopping it) if it exits or times out first.

    Its output goes to `log_path` (default: `<data_dir>-stdout.log` beside the data dir), each
    line prefixed with `stamp()` if given, and to stderr too with `echo`. It runs in a session
    of its own, so a terminal's Ctrl-C reaches only the caller, which stops it in order, and it
    gets SIGTERM if the caller dies."""
    http_port = http_port or free_port()
    kafka_port = kafka_port or free_port_pair()
    processor_port = processor_port or free_port()
    log_path = log_path or data_dir.parent / f"{data_dir.name}-stdout.log"
    command = [sys.executable, "-m", "parley.cli", "dev", "--http-port", str(http_port)]
    command += ["--data-dir", str(data_dir), *args]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        env={
            **os.environ,
            "PARLEY_HTTP_HOST": "127.0.0.1",
            "PARLEY_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
            "PARLEY_PROCESSOR_HTTP_PORT": str(processor_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=supervised_stack,
    )
    assert process.stdout is not None
    ready: list[str] = []
    got_ready = threading.Event()
    # Read for as long as it runs, so that a full pipe never blocks a child.
    reader = threading.Thread(
        target=_copy_lines,
        args=(process.stdout, log_path.open("ab"), stamp, echo, ready, got_ready),
        name="parley-dev-output",
        daemon=True,
    )
    reader.start()
    stack = DevStack(
        process, data_dir, http_port, kafka_port, processor_port, log_path, 0.0, reader
    )
    deadline = started + timeout_s
    while not got_ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop(30)
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"parley dev did not get ready (exit code {process.returncode}); "
                f"its output ({log_path}) ends:\n{tail}"
            )
    expected = f"{READY} {stack.http_url}  {stack.ws_url}"
    if ready[0] != expected:
        stack.stop(30)
        raise RuntimeError(f"parley dev said {ready[0]!r}, not {expected!r}")
    stack.startup_s = time.monotonic() - started
    return stack


def _copy_lines(
    source: IO[bytes],
    sink: IO[bytes],
    stamp: Callable[[], str] | None,
    echo: bool,
    ready: list[str],
    got_ready: threading.Event,
) -> None:
    with source, sink:
        for line in source:
            sink.write(stamp().encode() + line if stamp is not None else line)
            sink.flush()
            if echo:
                sys.stderr.write(line.decode(errors="replace"))
            if not ready and READY.encode() in line:
                # The processor's terminal codes may precede it on the same line.
                text = line.decode(errors="replace")
                ready.append(text[text.index(READY) :].strip())
                got_ready.set()
