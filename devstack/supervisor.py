"""`parley dev`: the whole stack on the embedded defaults, as child processes of one command.

Start order: Kafka, Postgres (and Cassandra for `--message-store scylla`), migrations, topics,
processors, gateways. With `--cluster`, three Kafka nodes (and three Cassandra nodes) instead
of one (devstack/embedded/cluster.py), topics and keyspace replicated three times. A child that
exits on its own is restarted with backoff, the others keep
serving; only Ctrl-C or SIGTERM stops the stack, in the order gateways (no new sends),
processors, Kafka, Cassandra, Postgres. The log is on disk, so nothing sent is lost by a stop:
the processors carry on from their committed offsets at the next start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from types import FrameType

from devstack.embedded.cassandra import EmbeddedCassandra
from devstack.embedded.cluster import (
    MIN_INSYNC,
    REPLICATION,
    REQUEST_TIMEOUT_MS,
    CassandraCluster,
    KafkaCluster,
    stop_all,
)
from devstack.embedded.kafka import KAFKA_VERSION, EmbeddedKafka
from devstack.embedded.postgres import EmbeddedPostgres
from devstack.embedded.process import stop_process, stop_processes, supervised_child, wait_for_port
from devstack.embedded.service import EmbeddedService
from schemas.settings import Settings
from storage.postgres.migrate import migrate
from topics.admin import ensure_topics

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 60.0  # a child that ran this long starts its backoff from the beginning


class Stop(Exception):
    pass


def _say(line: str) -> None:
    """A step of the start, on stderr: stdout keeps the ready lines that scripts wait for."""
    print(f"Parley: {line}", file=sys.stderr, flush=True)


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
        PARLEY_MESSAGE_STORE=settings.message_store,
        PARLEY_SCYLLA_HOSTS=settings.scylla_hosts,
        PARLEY_SCYLLA_PORT=str(settings.scylla_port),
        PARLEY_REPLICATION_FACTOR=str(settings.replication_factor),
        PARLEY_SCYLLA_REPLICATION_FACTOR=str(settings.scylla_replication_factor),
        PARLEY_KAFKA_REQUEST_TIMEOUT_MS=str(settings.kafka_request_timeout_ms),
    )
    if settings.min_insync_replicas is not None:
        env["PARLEY_MIN_INSYNC_REPLICAS"] = str(settings.min_insync_replicas)
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


@dataclass
class Child:
    """One supervised Parley process: how to start it, and its restarts so far."""

    name: str
    role: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = field(default=0, repr=False)  # consecutive quick exits, for the backoff
    due_at: float | None = None  # when a restart is due, while it is down

    def run(self) -> None:
        self.process = spawn(self.role, self.env)
        self.started_at = time.monotonic()
        self.due_at = None

    def check(self, now: float) -> None:
        """Restart the child if it has exited and its backoff has passed."""
        if self.process is not None and self.process.poll() is None:
            return
        if self.due_at is None:
            code = self.process.returncode if self.process is not None else None
            ran_s = now - self.started_at
            self.failures = 0 if ran_s >= STABLE_AFTER_S else self.failures + 1
            delay = RESTART_BACKOFF_S[min(self.failures, len(RESTART_BACKOFF_S) - 1)]
            self.due_at = now + delay
            print(
                f"Parley: {self.name} exited ({code}) after {ran_s:.1f}s; restarting in {delay:g}s",
                file=sys.stderr,
                flush=True,
            )
            return
        if now >= self.due_at:
            self.restarts += 1
            try:
                self.run()
            except Exception as exc:  # its port still taken, say: try again after a backoff
                print(f"Parley: {self.name} did not start: {exc}", file=sys.stderr, flush=True)
                self.started_at, self.due_at = now, None
                return
            print(f"Parley: {self.name} restarted ({self.restarts})", file=sys.stderr, flush=True)


def run_dev(
    settings: Settings,
    gateways: int = 1,
    processors: int = 1,
    *,
    embedded_kafka: bool = True,
    embedded_cql: bool = False,
    cluster: bool = False,
) -> None:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": data_dir})
    kafkas: list[EmbeddedService] = []
    cassandras: list[EmbeddedService] = []
    postgres = None
    workers: list[Child] = []
    fronts: list[Child] = []
    try:
        if embedded_kafka:
            port = int(settings.kafka_bootstrap.rpartition(":")[2])
            if cluster:
                brokers = KafkaCluster(data_dir / "kafka-cluster", port, log_dir=data_dir)
                kafkas = list(brokers.nodes)
                brokers.start()
                settings = settings.model_copy(
                    update={
                        "kafka_bootstrap": brokers.bootstrap,
                        "replication_factor": REPLICATION,
                        "min_insync_replicas": MIN_INSYNC,
                        "kafka_request_timeout_ms": REQUEST_TIMEOUT_MS,
                    }
                )
                _say(f"Kafka {KAFKA_VERSION} cluster up on {brokers.bootstrap}")
            else:
                kafka = EmbeddedKafka(data_dir / "kafka", port, log_path=data_dir / "kafka.log")
                kafkas = [kafka]
                kafka.start()
                _say(f"Kafka {KAFKA_VERSION} up on {settings.kafka_bootstrap}")
        postgres = EmbeddedPostgres(data_dir / "postgres")
        settings = settings.model_copy(update={"postgres_dsn": postgres.dsn})
        _say(f"Postgres up (data in {data_dir / 'postgres'})")
        if embedded_cql and cluster:
            nodes = CassandraCluster(
                data_dir / "cassandra-cluster", settings.scylla_port, log_dir=data_dir
            )
            cassandras = list(nodes.nodes)
            nodes.start()
            settings = settings.model_copy(
                update={"scylla_hosts": nodes.hosts, "scylla_replication_factor": REPLICATION}
            )
            _say(f"Cassandra cluster up on {nodes.hosts} port {settings.scylla_port}")
        elif embedded_cql:
            cassandra = EmbeddedCassandra(
                data_dir / "cassandra",
                settings.scylla_port,
                log_path=data_dir / "cassandra.log",
            )
            cassandras = [cassandra]
            cassandra.start()
            settings = settings.model_copy(update={"scylla_hosts": "127.0.0.1"})
            _say(f"Cassandra up on 127.0.0.1:{settings.scylla_port}")
        asyncio.run(migrate(settings.postgres_dsn))
        if settings.message_store == "scylla":
            asyncio.run(_migrate_cql(settings))
        asyncio.run(ensure_topics(settings))
        env = child_env(settings)
        # Processor i serves /healthz on processor_http_port + i; gateway i on http_port + i.
        for i in range(processors):
            http_port = settings.processor_http_port + i
            url = f"http://{settings.processor_http_host}:{http_port}/healthz"
            worker = Child(
                f"processor {i + 1}",
                "processor",
                {**env, "PARLEY_PROCESSOR_HTTP_PORT": str(http_port)},
            )
            worker.run()
            assert worker.process is not None
            wait_healthy(url, worker.process, 90)
            workers.append(worker)
            _say(f"processor {i + 1} up")
        urls = []
        for i in range(gateways):
            http_port = settings.http_port + i
            front = Child(
                f"gateway {i + 1}", "gateway", {**env, "PARLEY_HTTP_PORT": str(http_port)}
            )
            front.run()
            assert front.process is not None
            wait_for_port(settings.http_host, http_port, 30)
            wait_healthy(f"http://{settings.http_host}:{http_port}/healthz", front.process, 30)
            fronts.append(front)
            urls.append(
                f"http://{settings.http_host}:{http_port}  ws://{settings.http_host}:{http_port}/v1/ws"
            )
        print(f"Parley ready: {urls[0]}", flush=True)
        for i, url in enumerate(urls[1:], start=2):
            print(f"  gateway {i}: {url}", flush=True)
        print(f"  web app: http://{settings.http_host}:{settings.http_port}/", flush=True)
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            for child in workers + fronts:
                child.check(now)
            for service in kafkas + cassandras:
                if service.process.poll() is not None:
                    # The log and the tables are on disk: the same data directory resumes.
                    name = f"{service.name} on {service.host}"
                    print(f"Parley: {name} exited; restarting", file=sys.stderr, flush=True)
                    service.start()
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Gateways first (no new sends), then the processors; what they have not consumed
        # yet waits in the log for the next start.
        stop_processes([c.process for c in fronts if c.process is not None])
        for worker in workers:
            if worker.process is not None:
                stop_process(worker.process)
        # The nodes of a cluster stop together (each in its own thread).
        for services in (kafkas, cassandras):
            if services:
                stop_all(services)
        if postgres is not None:
            postgres.stop()
        print("Parley stopped.", flush=True)


async def _migrate_cql(settings: Settings) -> None:
    from storage.scylla import migrate_cluster

    await migrate_cluster(
        settings.scylla_host_list(),
        settings.scylla_port,
        settings.scylla_keyspace,
        replication_factor=settings.scylla_replication_factor,
    )
