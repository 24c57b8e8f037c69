"""`parley dev` (what `make dev` runs): starts everything, keeps history across restarts, and
leaves no process behind on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from parley.embedded import EmbeddedPostgres, free_port
from tests.client import Api


def start_dev(
    data_dir: Path, http_port: int, broker_port: int, processor_port: int
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        PARLEY_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        PARLEY_PROCESSOR_HTTP_PORT=str(processor_port),
        PARLEY_PROCESSOR_SESSION_TIMEOUT_S="3",
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
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "Parley ready:" in line:  # the processor's terminal codes may precede it
            assert line[line.index("Parley ready:") :].strip() == (
                f"Parley ready: http://127.0.0.1:{http_port}  ws://127.0.0.1:{http_port}/v1/ws"
            )
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("parley dev did not print its ready line")


def leftovers(data_dir: Path, pids: set[int]) -> list[str]:
    alive = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.info["pid"] in pids or str(data_dir) in cmdline:
                alive.append(f"{proc.info['pid']} {cmdline}")
        except psutil.NoSuchProcess:
            continue
    return alive


def stop(process: subprocess.Popen[str], sig: int, data_dir: Path) -> None:
    children = {c.pid for c in psutil.Process(process.pid).children(recursive=True)}
    assert len(children) >= 3  # broker, processor, gateway (Postgres is a daemon of its own)
    process.send_signal(sig)
    assert process.wait(90) == 0
    deadline = time.monotonic() + 20
    while leftovers(data_dir, children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(data_dir, children) == []


@pytest.mark.timeout(400)
async def test_dev_stack_serves_keeps_history_across_restarts_and_leaves_no_orphans(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "devdata"
    ports = [free_port() for _ in range(3)]
    dev = start_dev(data_dir, *ports)
    try:
        async with Api(f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            a, b = await api.new_device(), await api.new_device()
            channel = await api.direct(a, b.user_id)
            socket = await api.connect(a)
            for i in range(20):
                await socket.send_text(channel, f"kept {i}")
            await socket.collect_messages(channel, 20)
            before = await api.all_history(b, channel)
        stop(dev, signal.SIGINT, data_dir)  # what Ctrl-C sends

        dev = start_dev(data_dir, *ports)
        async with Api(f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            assert await api.all_history(b, channel) == before
            assert [m["text"] for m in before] == [f"kept {i}" for i in range(20)]
            socket = await api.connect(a)
            await socket.send_text(channel, "after restart")
            got = await socket.collect_messages(channel, 21)
            assert [m["text"] for m in got] == [f"kept {i}" for i in range(20)] + ["after restart"]
            assert int(got[-1]["message_id"]) > int(before[-1]["message_id"])
        stop(dev, signal.SIGTERM, data_dir)

        # A supervisor killed outright takes its children with it (Postgres, a daemon, stays
        # up for the next start to reuse; here it is stopped by hand).
        dev = start_dev(data_dir, *ports)
        children = {c.pid for c in psutil.Process(dev.pid).children(recursive=True)}
        dev.kill()
        dev.wait(10)
        deadline = time.monotonic() + 20
        while any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            for p in children
        ):
            assert time.monotonic() < deadline, "children outlived a killed supervisor"
            await asyncio.sleep(0.2)
        EmbeddedPostgres(data_dir / "postgres").stop()
        assert leftovers(data_dir, children) == []
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGTERM)
            dev.wait(60)
