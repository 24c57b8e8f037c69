"""What the embedded JVM servers (Kafka, Cassandra) share: their ports, one child process
started in a group of its own, readiness, an orderly stop."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Self

from devstack.embedded.process import (
    ServiceError,
    port_is_free,
    stop_process,
    supervised_service,
    wait_until,
)

STOP_TIMEOUT_S = 30.0


class EmbeddedService:
    """A server run as a child process: `start`, then `stop` (or use it with `with`)."""

    name = "service"

    def __init__(
        self, ports: Sequence[int], log_path: Path | None, *, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self._ports = list(ports)
        self._log_path = log_path
        self._log_file: IO[Any] | None = None  # open from `start` to `stop`
        self._process: subprocess.Popen[bytes] | None = None
        self._ready: Callable[[], bool] = lambda: False
        self._timeout_s = 0.0

    def _open_log(self) -> None:
        if self._log_path is not None and self._log_file is None:
            self._log_file = self._log_path.open("ab")

    def start(self) -> None:
        """Launch it and return once it serves (stopped again if it never does)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting for it to serve (then `wait_ready`): the nodes of
        a cluster start together. Call it from a thread that lives as long as the service (the
        main thread): the child gets SIGTERM when the thread that started it ends (Linux's
        parent-death signal belongs to the thread), so never from a pool's thread."""
        raise NotImplementedError

    def _check_ports(self) -> None:
        for port in self._ports:
            if not port_is_free(self.host, port):
                raise ServiceError(
                    f"port {self.host}:{port} is in use: is another {self.name} running?"
                )

    def _spawn(self, command: list[str], ready: Callable[[], bool], timeout_s: float) -> None:
        """Start `command`; `wait_ready` then waits up to `timeout_s` for `ready()`."""
        self._open_log()
        self._ready, self._timeout_s = ready, timeout_s
        self._process = subprocess.Popen(
            command,
            stdout=self._log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=supervised_service,
        )

    def wait_ready(self) -> None:
        """Return once the launched process serves; stop it if it exits or never does."""
        try:
            what = f"{self.name} on {self.host}:{self._ports[0]}"
            wait_until(self._ready, self._timeout_s, what, self.process)
        except BaseException:
            self.stop()
            raise

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._process

    def stop(self) -> None:
        """An orderly shutdown (SIGTERM); SIGKILL only if it has not ended in 30 s."""
        if self._process is not None:
            stop_process(self._process, STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
