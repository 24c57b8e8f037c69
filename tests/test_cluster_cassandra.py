"""Chaos on a three-node Cassandra cluster under load: with one node killed (SIGKILL), sends and
history keep working at LOCAL_QUORUM (keyspace replication 3); when it is back, the writes it
missed reach it by hinted hand-off (docs/operations.md, 4.6), and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import dict_factory

from devstack.embedded.cluster import HOSTS, REPLICATION, CassandraCluster
from devstack.embedded.kafka import EmbeddedKafka
from devstack.embedded.process import free_port, free_port_pair_on
from schemas.settings import Settings
from tests.cluster_chaos import sending, spike, streams, until_accepted
from tests.conftest import Api
from tests.stack import Stack, base_env
from topics.admin import ensure_topics

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

KEYSPACE = "parley_cluster"


@pytest.fixture(scope="module")
def cassandra_cluster(workdir: Path) -> Iterator[CassandraCluster]:
    with CassandraCluster(
        workdir / "cassandra-cluster", free_port_pair_on(HOSTS), log_dir=workdir
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stack(cassandra_cluster: CassandraCluster, postgres_dsn: str, workdir: Path) -> Iterator[Stack]:
    """A processor and a gateway storing messages on the Cassandra cluster (a Kafka of their
    own: one node is enough here)."""
    from storage.scylla import migrate_cluster

    home = workdir / "cassandra-cluster-stack"
    home.mkdir()
    with EmbeddedKafka(
        home / "kafka", free_port(), controller_port=free_port(), log_path=home / "kafka.log"
    ) as kafka:
        settings = Settings(
            kafka_bootstrap=kafka.bootstrap,
            postgres_dsn=postgres_dsn,
            data_dir=home / "data",
            message_store="scylla",
            scylla_hosts=cassandra_cluster.hosts,
            scylla_port=cassandra_cluster.port,
            scylla_keyspace=KEYSPACE,
            scylla_replication_factor=REPLICATION,
        )
        asyncio.run(ensure_topics(settings))
        asyncio.run(
            migrate_cluster(
                list(HOSTS), cassandra_cluster.port, KEYSPACE, replication_factor=REPLICATION
            )
        )
        env = base_env(settings.kafka_bootstrap, settings.postgres_dsn, home)
        env.update(
            PARLEY_MESSAGE_STORE="scylla",
            PARLEY_SCYLLA_HOSTS=cassandra_cluster.hosts,
            PARLEY_SCYLLA_PORT=str(cassandra_cluster.port),
            PARLEY_SCYLLA_KEYSPACE=KEYSPACE,
        )
        stack = Stack(home, env, settings)
        stack.start_processor()
        stack.start_gateway()
        yield stack
        stack.stop_all()


def on_node(host: str, port: int, cql: str) -> list[dict[str, Any]]:
    """The rows of `cql` as one node answers it (a node-local virtual table, say)."""
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]), row_factory=dict_factory
    )
    cluster = Cluster(
        [host], port=port, protocol_version=4, execution_profiles={EXEC_PROFILE_DEFAULT: profile}
    )
    try:
        return list(cluster.connect().execute(cql))
    finally:
        cluster.shutdown()


async def test_one_cassandra_node_killed_under_load_sends_and_history_go_on_and_hints_repair_it(
    api: Api, cassandra_cluster: CassandraCluster, workdir: Path
) -> None:
    load = await streams(api, 4, hot_pace_s=0.01, pace_s=0.05)
    hot = load[0]
    victim = cassandra_cluster.node(3)
    others = [n.host for n in cassandra_cluster.nodes if n is not victim]
    port = cassandra_cluster.port

    def pending_hints() -> int:
        return sum(
            len(on_node(host, port, "SELECT * FROM system_views.pending_hints")) for host in others
        )

    async with sending(load) as stop:
        killed = time.monotonic()
        victim.process.kill()  # SIGKILL
        await asyncio.to_thread(victim.process.wait)
        await until_accepted(hot, 100)
        for stream in load:
            await until_accepted(stream, 10)
        # Devices that connect now sync from the store, at LOCAL_QUORUM too.
        for stream in load:
            await stream.connect_spare(api)
        # History reads at LOCAL_QUORUM too: two of three replicas answer.
        for stream in load:
            got = [m["text"] for m in await api.all_history(stream.reader, stream.channel)]
            assert got == stream.accepted[: len(got)] and len(got) >= 10
        # The two nodes up keep hints of the writes the dead one missed (in memory first, in
        # a file of pending hints within `hints_flush_period`, 10 s).
        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(pending_hints):
            assert time.monotonic() < deadline, "no hints kept for the dead node in 120 s"
            await asyncio.sleep(0.5)  # polling the nodes, within the deadline
        returned = time.monotonic()
        victim.launch()  # from the main thread: see EmbeddedService.launch
        await asyncio.to_thread(victim.wait_ready)
        back = time.monotonic()
        await until_accepted(hot, 50)
        await stop()
        for stream in load:
            await stream.check_delivered_once_in_order(api)
    figures = {
        "node_down_s": round(returned - killed, 2),
        "restart_s": round(back - returned, 2),
        **spike(load, killed, back),
    }
    # The hints are handed off to the node that came back: none left anywhere.
    deadline = time.monotonic() + 180
    while await asyncio.to_thread(pending_hints):
        assert time.monotonic() < deadline, "hints not handed off in 180 s"
        await asyncio.sleep(0.5)  # polling the nodes, within the deadline
    figures["hints_handed_off_s"] = round(time.monotonic() - back, 2)
    figures["resent"] = sum(s.resent for s in load)
    text = json.dumps(figures, indent=2)
    (workdir / "cassandra-cluster-figures.json").write_text(text)
    print(f"\ncassandra cluster figures:\n{text}")
