"""A local cluster: three Kafka nodes and, for the Scylla message store, three Cassandra nodes,
each on an address of its own (127.0.0.1, 127.0.0.2, 127.0.0.3: the whole 127.0.0.0/8 is the
loopback on Linux), so that the nodes of one kind share their ports as the hosts of a real
cluster do. `parley dev --cluster` runs one; so do the chaos tests (tests/test_cluster.py).

Kafka: each node is a KRaft voter and a broker; topics get replication 3 and two in-sync
replicas required (the producers write with acks=all). Cassandra: the keyspace gets
replication 3; the store reads and writes at LOCAL_QUORUM. Either keeps serving with one node
down. Sized for one box: a 384 MiB heap per broker, 768 MiB per Cassandra node.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Generic, Self, TypeVar

from devstack.embedded.cassandra import EmbeddedCassandra, Ring
from devstack.embedded.kafka import CLUSTER_SESSION_MS, EmbeddedKafka, Node, new_cluster_id
from devstack.embedded.service import EmbeddedService

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
REPLICATION = len(HOSTS)
MIN_INSYNC = 2
# The clients' request timeout on the cluster (`kafka_request_timeout_ms`): above the brokers'
# session, as that setting asks, and well short of the 10 s default made for Kafka's 9 s one.
REQUEST_TIMEOUT_MS = CLUSTER_SESSION_MS + 2000
KAFKA_HEAP_MB = 384
CASSANDRA_HEAP_MB = 768
# Evenly spaced Murmur3 tokens, one per node.
TOKENS = tuple(-(2**63) + i * (2**64 // len(HOSTS)) for i in range(len(HOSTS)))


S = TypeVar("S", bound=EmbeddedService)


class _Nodes(Generic[S]):
    """Nodes started and stopped together (`start` is each cluster's own)."""

    nodes: list[S]

    def node(self, node_id: int) -> S:
        return self.nodes[node_id - 1]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        stop_all(self.nodes)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KafkaCluster(_Nodes[EmbeddedKafka]):
    """Three KRaft nodes (broker and controller each), node i on HOSTS[i-1]:`port`, its
    controller on `port + 1`, its log in `data_dir/node-i`."""

    def __init__(self, data_dir: Path, port: int, *, log_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.controller_port = port + 1
        ids = self.data_dir / "cluster-id"
        if not ids.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            ids.write_text(new_cluster_id())
        cluster_id = ids.read_text().strip()
        voters = ",".join(
            f"{i}@{host}:{self.controller_port}" for i, host in enumerate(HOSTS, start=1)
        )
        self.nodes = [
            EmbeddedKafka(
                self.data_dir / f"node-{i}",
                port,
                controller_port=self.controller_port,
                log_path=log_dir / f"kafka-{i}.log" if log_dir is not None else None,
                heap_mb=KAFKA_HEAP_MB,
                node=Node(i, host, voters, REPLICATION, MIN_INSYNC),
                cluster_id=cluster_id,
            )
            for i, host in enumerate(HOSTS, start=1)
        ]
        self.bootstrap = ",".join(node.bootstrap for node in self.nodes)

    def start(self) -> None:
        """Start the three at once (a node serves only once a quorum of voters is up)."""
        start_together(self.nodes)


class CassandraCluster(_Nodes[EmbeddedCassandra]):
    """Three Cassandra nodes, node i serving CQL on HOSTS[i-1]:`port` (storage on
    `port + 1`), its data in `data_dir/node-i`; the first is the seed."""

    def __init__(self, data_dir: Path, port: int, *, log_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.nodes = [
            EmbeddedCassandra(
                self.data_dir / f"node-{i}",
                port,
                storage_port=port + 1,
                log_path=log_dir / f"cassandra-{i}.log" if log_dir is not None else None,
                heap_mb=CASSANDRA_HEAP_MB,
                ring=Ring(host, token, HOSTS[0]),
            )
            for i, (host, token) in enumerate(zip(HOSTS, TOKENS, strict=True), start=1)
        ]
        self.hosts = ",".join(HOSTS)

    def start(self) -> None:
        """The seed first, then the other two together (each joins with its own token)."""
        try:
            self.nodes[0].start()
        except BaseException:
            self.stop()
            raise
        start_together(self.nodes[1:])


def start_together(services: Sequence[EmbeddedService]) -> None:
    """Launch the services (from this thread: see `EmbeddedService.launch`), then wait for
    each to serve; if one does not, stop them all and raise."""
    try:
        for service in services:
            service.launch()
        for service in services:
            service.wait_ready()
    except BaseException:
        stop_all(services)
        raise


def stop_all(services: Sequence[EmbeddedService]) -> None:
    """Stop the services together, each in its own thread (an orderly stop of each)."""
    with ThreadPoolExecutor(len(services)) as pool:
        for stopping in [pool.submit(service.stop) for service in services]:
            stopping.result()
