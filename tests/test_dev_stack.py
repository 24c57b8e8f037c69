"""`parley dev` (what `make dev` runs): starts everything, keeps the log and the history across
restarts (tap and replay read the same sends), restarts a child that dies, and leaves no
process behind on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devstack.embedded.cluster import HOSTS
from devstack.embedded.kafka import KAFKA_VERSION, EmbeddedKafka
from devstack.embedded.postgres import EmbeddedPostgres
from devstack.embedded.process import free_port, free_port_pair_on
from tests.conftest import Api
from tests.stack import start_dev


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


def quiet_start_line(line: str) -> bool:
    """A line of a normal start: a step (`Parley: Kafka … up`), or a ready line."""
    return line.startswith(("Parley: ", "Parley ready: ", "  gateway ", "  web app: "))


def stop(process: subprocess.Popen[bytes], sig: int, data_dir: Path) -> None:
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
        # A first start (a new Kafka cluster, a new Postgres) says what started and that it is
        # ready, nothing else: no warnings, no transient errors.
        printed = dev.log_path.read_text().splitlines()
        assert printed and all(quiet_start_line(line) for line in printed), printed
        async with Api(f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            a, b = await api.new_device(), await api.new_device()
            channel = await api.direct(a, b.user_id)
            socket = await api.connect(a)
            for i in range(20):
                await socket.send_message(channel, f"kept {i}")
            await socket.collect_messages(channel, 20)
            before = await api.all_history(b, channel)
        stop(dev.process, signal.SIGINT, data_dir)  # what Ctrl-C sends

        dev = start_dev(data_dir, *ports)
        async with Api(f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            assert await api.all_history(b, channel) == before
            assert [m["text"] for m in before] == [f"kept {i}" for i in range(20)]
            socket = await api.connect(a)
            await socket.send_message(channel, "after restart")
            got = await socket.collect_messages(channel, 21)
            assert [m["text"] for m in got] == [f"kept {i}" for i in range(20)] + ["after restart"]
            assert int(got[-1]["message_id"]) > int(before[-1]["message_id"])
        stop(dev.process, signal.SIGTERM, data_dir)

        # The log is on disk: the sends of both runs are still in the topic, and the store
        # rebuilt from it after emptying has the same rows and ids.
        await assert_log_rebuilds_the_store(data_dir, ports[1], [f"kept {i}" for i in range(20)])

        # A supervisor killed outright takes its children with it (Postgres, a daemon, stays
        # up for the next start to reuse; here it is stopped by hand).
        dev = start_dev(data_dir, *ports)
        children = {c.pid for c in psutil.Process(dev.process.pid).children(recursive=True)}
        dev.process.kill()
        dev.process.wait(10)
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
        dev.stop(60)


MESSAGE_ROWS = "SELECT channel_id, message_id, client_msg_id, text FROM messages ORDER BY 1, 2"


def parley(command: list[str], bootstrap: str, dsn: str) -> str:
    env = {**os.environ, "PARLEY_KAFKA_BOOTSTRAP": bootstrap, "PARLEY_POSTGRES_DSN": dsn}
    result = subprocess.run(
        [sys.executable, "-m", "parley.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


async def assert_log_rebuilds_the_store(data_dir: Path, broker_port: int, texts: list[str]) -> None:
    """With the stack stopped: `parley tap` reads every earlier send from the dev stack's
    Kafka, and `parley replay` into the emptied message tables restores the same rows."""
    postgres = EmbeddedPostgres(data_dir / "postgres")
    try:
        with EmbeddedKafka(data_dir / "kafka", broker_port) as kafka:
            tapped = parley(
                ["tap", "parley.messages.v1", "--from-beginning", "--no-follow"],
                kafka.bootstrap,
                postgres.dsn,
            )
            sent = [orjson.loads(line).get("text") for line in tapped.splitlines()]
            assert [t for t in sent if t in texts or t == "after restart"] == [
                *texts,
                "after restart",
            ]
            async with await psycopg.AsyncConnection.connect(postgres.dsn) as conn:
                before = await (await conn.execute(MESSAGE_ROWS)).fetchall()
                await conn.execute("TRUNCATE messages, message_sends")
                await conn.commit()
                assert await (await conn.execute(MESSAGE_ROWS)).fetchall() == []
            parley(["replay"], kafka.bootstrap, postgres.dsn)
            async with await psycopg.AsyncConnection.connect(postgres.dsn) as conn:
                assert await (await conn.execute(MESSAGE_ROWS)).fetchall() == before
            assert len(before) == len(texts) + 1
    finally:
        postgres.stop()


@pytest.mark.timeout(400)
async def test_a_killed_gateway_is_restarted_while_the_other_keeps_serving(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "devdata"
    ports = [free_port() for _ in range(3)]
    dev = start_dev(data_dir, *ports, "--gateways", "2")
    first, second = f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[0] + 1}"
    try:
        async with Api(f"http://{second}", f"ws://{second}/v1/ws") as api:
            a, b = await api.new_device(), await api.new_device()
            channel = await api.direct(a, b.user_id)
            listener = await api.connect(b)
            victim = listening_process(ports[0])
            victim.kill()
            # The other gateway serves all along; the killed one comes back on its port.
            await (await api.connect(a)).send_message(channel, "while one is down")
            got = await listener.collect_messages(channel, 1)
            assert [m["text"] for m in got] == ["while one is down"]
            deadline = time.monotonic() + 60
            while listening_pid(ports[0]) in (None, victim.pid):
                assert time.monotonic() < deadline, "the killed gateway was not restarted"
                await asyncio.sleep(0.2)
            async with Api(f"http://{first}", f"ws://{first}/v1/ws") as back:
                while (await back.request("GET", "/healthz")).status_code != 200:
                    assert time.monotonic() < deadline, "the restarted gateway is not healthy"
                    await asyncio.sleep(0.2)
                sender = await back.connect(a)
                await sender.send_message(channel, "through the restarted one")
                got = await listener.collect_messages(channel, 2)
                assert [m["text"] for m in got][-1] == "through the restarted one"
        assert dev.process.poll() is None, "the stack stopped when a child died"
        stop(dev.process, signal.SIGTERM, data_dir)
    finally:
        dev.stop(60)


def listening_pid(port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return conn.pid
    return None


def listening_process(port: int) -> psutil.Process:
    pid = listening_pid(port)
    assert pid is not None, f"nothing listens on {port}"
    return psutil.Process(pid)


def test_without_a_jdk_dev_says_what_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java, no mvn
    result = subprocess.run(
        [sys.executable, "-m", "parley.cli", "dev", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "install JDK 17+ and Maven" in result.stderr
    assert "--kafka HOST:PORT" in result.stderr


@pytest.mark.cluster
@pytest.mark.timeout(600)
async def test_dev_cluster_replicates_three_times_serves_and_stops_every_jvm(
    tmp_path: Path,
) -> None:
    """`parley dev --cluster --message-store scylla`: three brokers and three Cassandra nodes,
    topics and keyspace replicated three times; a stop leaves no JVM behind."""
    from storage.scylla import connect_scylla, shutdown_scylla
    from storage.scylla.session import execute

    data_dir = tmp_path / "devdata"
    ports = [free_port(), free_port_pair_on(HOSTS), free_port()]
    cql_port = free_port_pair_on(HOSTS)
    assert len({ports[1], ports[1] + 1, cql_port, cql_port + 1}) == 4
    dev = start_dev(
        data_dir,
        *ports,
        "--cluster",
        "--message-store",
        "scylla",
        # Six JVMs starting on a shared box: minutes, not seconds.
        timeout_s=480,
        PARLEY_SCYLLA_PORT=str(cql_port),
    )
    try:
        printed = dev.log_path.read_text().splitlines()
        assert printed and all(quiet_start_line(line) for line in printed), printed
        bootstrap = ",".join(f"127.0.0.{i}:{ports[1]}" for i in (1, 2, 3))
        assert f"Parley: Kafka {KAFKA_VERSION} cluster up on {bootstrap}" in printed
        topics = await cluster_topics(bootstrap)
        assert {len(p["replicas"]) for t in topics.values() for p in t} == {3}
        assert await min_insync(bootstrap, list(topics)) == {"2"}
        session = await connect_scylla(["127.0.0.2"], port=cql_port)
        try:
            rows = await execute(
                session,
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'parley'",
            )
            assert rows[0]["replication"]["datacenter1"] == "3"  # SimpleSnitch's one DC
            ring = session.cluster.metadata.all_hosts()
            assert sorted(host.address for host in ring if host.is_up) == list(HOSTS)
        finally:
            await shutdown_scylla(session)
        async with Api(f"http://127.0.0.1:{ports[0]}", f"ws://127.0.0.1:{ports[0]}/v1/ws") as api:
            a, b = await api.new_device(), await api.new_device()
            channel = await api.direct(a, b.user_id)
            socket = await api.connect(a)
            for i in range(5):
                await socket.accepted(await socket.send_message(channel, f"replicated {i}"))
            await socket.collect_messages(channel, 5)
            assert [m["text"] for m in await api.all_history(b, channel)] == [
                f"replicated {i}" for i in range(5)
            ]
        jvms = {p.pid for p in psutil.process_iter() if str(data_dir) in " ".join(p.cmdline())}
        assert len(jvms) >= 6  # three brokers, three Cassandra nodes
        stop(dev.process, signal.SIGTERM, data_dir)
        assert not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            for p in jvms
        )
    finally:
        dev.stop(60)


async def cluster_topics(bootstrap: str) -> dict[str, list[dict[str, Any]]]:
    """Parley's topics on the cluster: name -> its partitions' metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: t["partitions"] for t in described if t["topic"].startswith("parley.")}


async def min_insync(bootstrap: str, topics: list[str]) -> set[str]:
    """The `min.insync.replicas` of each of the topics (the set of their values)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, t, {"min.insync.replicas": None})
                for t in topics
            ]
        )
    finally:
        await admin.close()
    return {
        value
        for response in responses
        for resource in response.resources
        for name, value, *_ in resource[4]
        if name == "min.insync.replicas"
    }
