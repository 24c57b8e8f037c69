"""`parley dev`: the whole stack on the embedded defaults, as child processes of one command.

Start order: broker, Postgres, migrations, topics, processors, gateways. Stop order (Ctrl-C or
SIGTERM): gateways (no new sends), wait until the processors have consumed every send (the
embedded broker forgets its topics when it stops), processors, broker, Postgres.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from types import FrameType

from aiokafka import AIOKafkaConsumer, TopicPartition

from parley.embedded import EmbeddedPostgres, start_broker, supervised_child, wait_for_port
from parley.settings import Settings
from storage.postgres.migrate import migrate
from topics.admin import ensure_topics
from topics.definitions import messages_topic
from topics.offsets import end_offsets


class Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Once: a second Ctrl-C (or a SIGTERM passed on twice) must not break the orderly stop.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stop()


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PARLEY_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        PARLEY_POSTGRES_DSN=settings.postgres_dsn,
        PARLEY_DATA_DIR=str(settings.data_dir),
        PARLEY_HTTP_HOST=settings.http_host,
        PARLEY_HTTP_PORT=str(settings.http_port),
    )
    return env


def spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "parley.cli", role],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=supervised_child,
    )


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout_s}s")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    stop_processes([process], timeout_s)


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout_s: float = 15) -> None:
    """SIGTERM to all at once (gateways drain in parallel), then wait for each; SIGKILL the
    ones still running after `timeout_s`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def processor_lag(settings: Settings) -> int:
    """Sends on the messages topic not yet committed by the processors' consumer group."""
    topic = messages_topic(settings).name
    # Reads the group's committed offsets without joining it (no subscription, no commits).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.processor_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.messages_partitions)]
        ends = await end_offsets(consumer, partitions)
        lag = 0
        for tp, end in ends.items():
            committed = await consumer.committed(tp)
            lag += max(end - (committed or 0), 0)
        return lag
    finally:
        await consumer.stop()


def wait_drained(settings: Settings, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    lag = -1
    while time.monotonic() < deadline:
        try:
            lag = asyncio.run(processor_lag(settings))
        except Exception:
            return -1
        if lag == 0:
            return 0
        time.sleep(0.2)
    return lag


def run_dev(settings: Settings, gateways: int = 1, processors: int = 1) -> None:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": data_dir})
    port = settings.kafka_bootstrap.rpartition(":")[2]
    broker = postgres = None
    workers: list[subprocess.Popen[bytes]] = []
    fronts: list[subprocess.Popen[bytes]] = []
    try:
        broker = start_broker(int(port), (data_dir / "broker.log").open("ab"), supervised=True)
        postgres = EmbeddedPostgres(data_dir / "postgres")
        settings = settings.model_copy(update={"postgres_dsn": postgres.dsn})
        asyncio.run(migrate(settings.postgres_dsn))
        asyncio.run(ensure_topics(settings))
        env = child_env(settings)
        # Processor i serves /healthz on processor_http_port + i; gateway i on http_port + i.
        for i in range(processors):
            http_port = settings.processor_http_port + i
            worker = spawn("processor", {**env, "PARLEY_PROCESSOR_HTTP_PORT": str(http_port)})
            workers.append(worker)
            url = f"http://{settings.processor_http_host}:{http_port}/healthz"
            wait_healthy(url, worker, 90)
        urls = []
        for i in range(gateways):
            http_port = settings.http_port + i
            front = spawn("gateway", {**env, "PARLEY_HTTP_PORT": str(http_port)})
            fronts.append(front)
            wait_for_port(settings.http_host, http_port, 30)
            wait_healthy(f"http://{settings.http_host}:{http_port}/healthz", front, 30)
            urls.append(
                f"http://{settings.http_host}:{http_port}  ws://{settings.http_host}:{http_port}/v1/ws"
            )
        print(f"Parley ready: {urls[0]}", flush=True)
        for i, url in enumerate(urls[1:], start=2):
            print(f"  gateway {i}: {url}", flush=True)
        children = workers + fronts
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [c.args for c in children if c.poll() is not None]
        print(f"Parley: a process exited ({failed}); stopping", file=sys.stderr, flush=True)
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Gateways first (no new sends), then let the processors finish what was sent: the
        # embedded broker forgets its topics when it stops.
        stop_processes(fronts)
        if broker is not None and workers:
            lag = wait_drained(settings, 30)
            if lag < 0:
                print("Parley: could not check that every send was processed", file=sys.stderr)
            elif lag:
                print(f"Parley: stopping with {lag} sends not yet processed", file=sys.stderr)
        for worker in workers:
            stop_process(worker)
        if broker is not None:
            stop_process(broker, 5)
        if postgres is not None:
            postgres.stop()
        print("Parley stopped.", flush=True)
