"""Apache Kafka as the embedded broker: one KRaft node (broker and controller in one JVM).

Kafka 3.9: the last line that keeps every protocol version aiokafka 0.14 and faust-streaming
0.15 send. Kafka 4.0 removed the old ones (KIP-896), and aiokafka's support for 4.x is still
an open question upstream, while 3.9 runs KRaft in production without ZooKeeper.

The log lives in `data_dir`: formatted once (the cluster id is kept there, in
`logs/meta.properties`), so topics survive a restart. Settings fit one development box: one
replica of everything, no initial rebalance delay, small segments, a small heap. A node of a
local cluster (devstack/embedded/cluster.py) is one of three voters, on an address of its own
(127.0.0.N), with replication 3 and two in-sync replicas required.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devstack.embedded.maven import classpath, java_binary
from devstack.embedded.process import port_answers
from devstack.embedded.service import EmbeddedService

KAFKA_VERSION = "3.9.1"
ARTIFACTS = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    # Kafka 3.9 logs through log4j 1 (as reload4j); the jars leave the binding to the runner.
    "org.slf4j:slf4j-reload4j:1.7.36",
)
START_TIMEOUT_S = 90.0

LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


@dataclass(frozen=True)
class Node:
    """Where one KRaft node is in its cluster: its id, its address, the controller quorum
    (`id@host:port,…`) and the replication its topics get. The default: a single node."""

    node_id: int = 1
    host: str = "127.0.0.1"
    voters: str | None = None  # None: this node alone
    replication: int = 1
    min_insync: int = 1


# How long a cluster's controller waits for a broker's heartbeat before it fences the broker
# (moves its leaderships, drops it from the in-sync replicas). Kafka's default is 9 s.
CLUSTER_SESSION_MS = 3000


def server_properties(
    data_dir: Path, port: int, controller_port: int, max_message_bytes: int, node: Node = Node()
) -> str:
    host, replication, min_insync = node.host, str(node.replication), str(node.min_insync)
    voters = node.voters or f"{node.node_id}@{host}:{controller_port}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        # Parley creates its topics itself (topics/admin.py); a typo must not make a new one.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": replication,
        "min.insync.replicas": min_insync,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_insync,
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        # Tests fail processors over in seconds (PARLEY_PROCESSOR_SESSION_TIMEOUT_S=3).
        "group.min.session.timeout.ms": "1000",
        # The largest record Parley produces (a 100,000-character message and its envelope).
        "message.max.bytes": str(max_message_bytes),
        "replica.fetch.max.bytes": str(max_message_bytes),
        # Small segments, so that the short retention of inbox and presence topics frees disk.
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
        # Idle work of a one-node dev cluster: KRaft appends a no-op record to its metadata log
        # every 500 ms by default and the leader balancer wakes every 5 minutes; one node has
        # no follower to keep fresh and no leader to move.
        "metadata.max.idle.interval.ms": "5000",
        "auto.leader.rebalance.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "2",
    }
    if node.voters is not None:
        settings.update(
            {
                # A follower that stops fetching (a paused broker) leaves the in-sync replicas
                # after 10 s rather than 30 s: until then an acks=all write waits for it.
                "replica.lag.time.max.ms": "10000",
                # A broker that stops heartbeating is fenced (its partitions led elsewhere,
                # and it leaves their in-sync replicas) after 3 s, Kafka's default being 9 s:
                # that is most of the pause a client sees while leadership moves. Its
                # heartbeat goes every half second, six to a session.
                "broker.session.timeout.ms": str(CLUSTER_SESSION_MS),
                "broker.heartbeat.interval.ms": "500",
                # The broker killed may be the active controller too (every node here is
                # both): the others notice after 1.5 s without a fetch from it (2 s by
                # default) and elect another within 0.5-1 s, which then fences the dead
                # broker one session later.
                "controller.quorum.fetch.timeout.ms": "1500",
                "controller.quorum.election.timeout.ms": "500",
                "num.replica.fetchers": "1",
            }
        )
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's Uuid)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as a CLI flag
            return text


class EmbeddedKafka(EmbeddedService):
    """A Kafka node whose log lives in `data_dir`: a single-node cluster unless `node` says
    otherwise (then every node of the cluster is formatted with the same `cluster_id`)."""

    name = "Kafka"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        controller_port: int | None = None,
        log_path: Path | None = None,
        heap_mb: int = 512,
        max_message_bytes: int = 8 * 1024 * 1024,
        node: Node = Node(),
        cluster_id: str | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.node = node
        self.bootstrap = f"{node.host}:{port}"
        self._heap_mb = heap_mb
        self._max_message_bytes = max_message_bytes
        self._cluster_id = cluster_id
        super().__init__([port, self.controller_port], log_path, host=node.host)

    def launch(self) -> None:
        """Format the log directory if new, start the JVM, return once the broker serves."""
        self._check_ports()
        java = java_binary()
        jars = classpath(f"kafka-{KAFKA_VERSION}", ARTIFACTS)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(
            server_properties(
                self.data_dir,
                self.port,
                self.controller_port,
                self._max_message_bytes,
                self.node,
            )
        )
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text(LOG4J)
        base = [java, "-cp", ":".join(map(str, jars)), f"-Dlog4j.configuration=file:{log4j}"]
        self._open_log()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            subprocess.run(
                [
                    *base,
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    "--cluster-id",
                    self._cluster_id or new_cluster_id(),
                    "--config",
                    str(config),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=self._log_file,
            )
        command = [
            *base[:1],
            f"-Xms{min(self._heap_mb, 256)}m",
            f"-Xmx{self._heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *base[1:],
            "kafka.Kafka",
            str(config),
        ]
        self._spawn(command, self._serves, START_TIMEOUT_S)

    def _serves(self) -> bool:
        if not port_answers(self.node.host, self.port):
            return False
        # A loop of its own in a thread of its own: callers may be inside a running loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, _metadata_answers(self.bootstrap)).result()


async def _metadata_answers(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    # A node of a cluster answers metadata without brokers until a quorum of voters is up,
    # which aiokafka logs as an error: here it only means "not yet", and is asked again.
    with _silenced("aiokafka", "aiokafka.cluster"):
        try:
            await admin.start()
            await admin.list_topics()
        except Exception:
            return False
        finally:
            await admin.close()
    return True


@contextlib.contextmanager
def _silenced(*names: str) -> Iterator[None]:
    """Drop every record of these loggers while in the block."""
    drop = logging.Filter("nothing passes this filter")
    for name in names:
        logging.getLogger(name).addFilter(drop)
    try:
        yield
    finally:
        for name in names:
            logging.getLogger(name).removeFilter(drop)
