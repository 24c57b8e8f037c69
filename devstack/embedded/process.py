"""Child processes and ports of the embedded services and the dev stack."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """An embedded service could not start (a port taken, an early exit, no answer)."""


def die_with_parent(signum: int) -> None:
    """Get `signum` when the parent process dies (Linux), so that nothing outlives it."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)


def supervised_child() -> None:
    """`preexec_fn` for the dev stack's Parley children: a process group of their own, so a
    terminal's Ctrl-C reaches only the supervisor (which stops them in order), and SIGKILL when
    the supervisor dies without stopping them (Linux), so no child is orphaned. Every role is
    safe to kill (at-least-once with idempotent effects)."""
    os.setpgrp()
    die_with_parent(signal.SIGKILL)


def supervised_stack() -> None:
    """`preexec_fn` for a whole `parley dev` started by a test or a benchmark: a session of its
    own (a terminal's Ctrl-C reaches only its caller, which stops it in order), and SIGTERM when
    the caller dies, so that it still stops its children in order."""
    os.setsid()
    die_with_parent(signal.SIGTERM)


def supervised_service() -> None:
    """`preexec_fn` for a JVM service (Kafka, Cassandra): its own process group, and SIGTERM,
    not SIGKILL, when its parent dies, so the broker still closes its logs cleanly."""
    os.setpgrp()
    die_with_parent(signal.SIGTERM)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL if it is still running after `timeout_s`."""
    stop_processes([process], timeout_s)


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout_s: float = 15) -> None:
    """SIGTERM to all at once (gateways drain in parallel), then wait for each; SIGKILL the
    ones still running after `timeout_s`."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(
    ready: Callable[[], bool], timeout_s: float, what: str, process: subprocess.Popen[bytes]
) -> None:
    """Poll `ready` until it holds; fail early if `process` exits, or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} not ready after {timeout_s}s")
        time.sleep(0.1)


def port_answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_answers(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")
        time.sleep(0.05)


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on the port. Connections of a stopped server lingering in
    TIME_WAIT do not count: servers bind with SO_REUSEADDR, and so does this check."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range (from 32768): a service
    started on it binds it a while later, and a port of that range may meanwhile become the
    local end of another process's outgoing connection (a test's stack saw its Kafka port
    taken so)."""
    return _free_ports(["127.0.0.1"], 1)


def free_port_pair() -> int:
    """A free port whose successor is free too: the embedded Kafka listens on `port` and its
    KRaft controller on `port + 1` (the embedded Cassandra likewise, CQL and storage)."""
    return _free_ports(["127.0.0.1"], 2)


def free_port_pair_on(hosts: Sequence[str]) -> int:
    """A port that is free, and its successor too, on every one of `hosts` (the nodes of a
    local cluster share their ports)."""
    return _free_ports(hosts, 2)


def _free_ports(hosts: Sequence[str], count: int) -> int:
    """The first of `count` adjacent ports free on every one of `hosts`, picked at random
    below the kernel's ephemeral range (see `free_port`)."""
    for _ in range(1000):
        port = random.randrange(20_000, 32_000)
        if all(port_is_free(host, p) for host in hosts for p in range(port, port + count)):
            return port
    raise RuntimeError(f"no {count} adjacent free ports on {', '.join(hosts)}")
