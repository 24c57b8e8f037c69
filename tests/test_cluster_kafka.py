"""Chaos on a three-broker cluster under load: a broker killed (SIGKILL) or paused (SIGSTOP)
while clients send in many channels loses nothing and doubles nothing; sends are answered
all along (`accepted`, or `internal` to send again); the broker comes back and catches up.
The figures (election time, send latency, sends resent) are printed (`-s`) and kept in
`<basetemp>/.../cluster-figures.json`; docs/operations.md quotes them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.embedded.cluster import (
    HOSTS,
    MIN_INSYNC,
    REPLICATION,
    REQUEST_TIMEOUT_MS,
    KafkaCluster,
)
from devstack.embedded.process import free_port_pair_on
from schemas.settings import Settings
from tests.cluster_chaos import (
    Stream,
    all_in_sync,
    new_leader,
    partitions,
    sending,
    spike,
    streams,
    until_accepted,
)
from tests.conftest import Api
from tests.stack import Stack, base_env
from topics.admin import ensure_topics
from topics.definitions import (
    all_topics,
    inbox_partition,
    inbox_topic,
    key_partition,
    messages_topic,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

STREAMS = 6


@pytest.fixture(scope="module")
def kafka_cluster(workdir: Path) -> Iterator[KafkaCluster]:
    with KafkaCluster(
        workdir / "kafka-cluster", free_port_pair_on(HOSTS), log_dir=workdir
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster_settings(kafka_cluster: KafkaCluster, postgres_dsn: str, workdir: Path) -> Settings:
    settings = Settings(
        kafka_bootstrap=kafka_cluster.bootstrap,
        postgres_dsn=postgres_dsn,
        data_dir=workdir / "cluster-stack" / "data",
        replication_factor=REPLICATION,
        min_insync_replicas=MIN_INSYNC,
    )
    asyncio.run(ensure_topics(settings))
    return settings


@pytest.fixture(scope="module")
def stack(cluster_settings: Settings, workdir: Path) -> Iterator[Stack]:
    """A processor and a gateway on the cluster."""
    home = workdir / "cluster-stack"
    home.mkdir(exist_ok=True)
    env = base_env(cluster_settings.kafka_bootstrap, cluster_settings.postgres_dsn, home)
    env.update(
        PARLEY_REPLICATION_FACTOR=str(REPLICATION),
        PARLEY_MIN_INSYNC_REPLICAS=str(MIN_INSYNC),
        PARLEY_KAFKA_REQUEST_TIMEOUT_MS=str(REQUEST_TIMEOUT_MS),
    )
    stack = Stack(home, env, cluster_settings)
    stack.start_processor()
    stack.start_gateway()
    yield stack
    stack.stop_all()


@pytest.fixture(scope="module")
def figures(workdir: Path) -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    text = json.dumps(found, indent=2)
    (workdir / "cluster-figures.json").write_text(text)
    print(f"\ncluster figures:\n{text}")


async def fault(
    api: Api,
    cluster: KafkaCluster,
    load: list[Stream],
    topic: str,
    partition: int,
    hurt: Callable[[int], Awaitable[None]],
    heal: Callable[[int], Awaitable[None]],
) -> dict[str, Any]:
    """Hurt the broker leading the partition under load, until another leads it; heal it, and
    wait until every replica is back in sync. Returns the figures."""
    hot = load[0]
    leader = int((await partitions(cluster.bootstrap, topic))[partition]["leader"])
    resent_before = sum(s.resent for s in load)
    started = time.monotonic()
    await hurt(leader)
    successor = await new_leader(cluster.bootstrap, topic, partition, leader)
    election_s = time.monotonic() - started
    await until_accepted(hot, 50)  # sends go on with the new leader
    healed = time.monotonic()
    await heal(leader)
    names = [t.name for t in all_topics(Settings())]
    await all_in_sync(cluster.bootstrap, names, REPLICATION)
    back_s = time.monotonic() - healed
    await until_accepted(hot, 20)
    return {
        "partition": f"{topic}/{partition}",
        "broker": leader,
        "new_leader": successor,
        "election_s": round(election_s, 2),
        "back_in_sync_s": round(back_s, 2),
        "resent": sum(s.resent for s in load) - resent_before,
        **spike(load, started, healed),
    }


def sigkill(cluster: KafkaCluster) -> Callable[[int], Awaitable[None]]:
    async def hurt(node_id: int) -> None:
        node = cluster.node(node_id)
        node.process.kill()  # SIGKILL: no orderly shutdown, no flush
        await asyncio.to_thread(node.process.wait)

    return hurt


def restart(cluster: KafkaCluster) -> Callable[[int], Awaitable[None]]:
    async def heal(node_id: int) -> None:
        node = cluster.node(node_id)
        node.launch()  # from this (the main) thread: see EmbeddedService.launch
        await asyncio.to_thread(node.wait_ready)

    return heal


async def test_brokers_leading_the_busiest_partition_then_an_inbox_one_killed_under_load(
    api: Api, kafka_cluster: KafkaCluster, cluster_settings: Settings, figures: dict[str, Any]
) -> None:
    load = await streams(api, STREAMS, hot_pace_s=0.005, pace_s=0.05)
    hot = load[0]
    messages = messages_topic(cluster_settings).name
    inbox = inbox_topic(cluster_settings).name
    async with sending(load) as stop:
        figures["sigkill, messages partition leader"] = await fault(
            api,
            kafka_cluster,
            load,
            messages,
            key_partition(hot.channel, cluster_settings.messages_partitions),
            sigkill(kafka_cluster),
            restart(kafka_cluster),
        )
        # Devices that connect now sync what was sent through the first fault from the store.
        for stream in load:
            await stream.connect_spare(api)
        figures["sigkill, inbox partition leader"] = await fault(
            api,
            kafka_cluster,
            load,
            inbox,
            inbox_partition(hot.reader.user_id, cluster_settings.inbox_partitions),
            sigkill(kafka_cluster),
            restart(kafka_cluster),
        )
        await stop()
        for stream in load:
            await stream.check_delivered_once_in_order(api)
    figures["sigkill, messages sent"] = sum(len(s.accepted) for s in load)


async def test_a_broker_paused_past_its_session_timeout_is_fenced_and_rejoins(
    api: Api, kafka_cluster: KafkaCluster, cluster_settings: Settings, figures: dict[str, Any]
) -> None:
    load = await streams(api, STREAMS, hot_pace_s=0.005, pace_s=0.05)
    messages = messages_topic(cluster_settings).name

    async def pause(node_id: int) -> None:
        os.kill(kafka_cluster.node(node_id).process.pid, signal.SIGSTOP)

    async def resume(node_id: int) -> None:
        # By now the controller has fenced it (another broker leads its partitions): it was
        # paused longer than its session timeout (broker.session.timeout.ms, 3 s here).
        os.kill(kafka_cluster.node(node_id).process.pid, signal.SIGCONT)

    async with sending(load) as stop:
        figures["sigstop, messages partition leader"] = await fault(
            api,
            kafka_cluster,
            load,
            messages,
            key_partition(load[0].channel, cluster_settings.messages_partitions),
            pause,
            resume,
        )
        await stop()
        for stream in load:
            await stream.check_delivered_once_in_order(api)


async def test_two_brokers_down_sends_are_answered_internal_and_resent_once_one_is_back(
    api: Api, kafka_cluster: KafkaCluster, cluster_settings: Settings, figures: dict[str, Any]
) -> None:
    """With two brokers of three down the log takes no writes (no quorum of controllers, and
    fewer in-sync replicas than `min.insync.replicas`): every send is answered `internal`
    within `send_answer_timeout_s`, never left in silence, and the client's resends (same
    client_msg_id) are each stored once when the brokers are back."""
    load = await streams(api, 2, hot_pace_s=0.05, pace_s=0.2)
    hot = load[0]
    messages = messages_topic(cluster_settings).name
    partition = key_partition(hot.channel, cluster_settings.messages_partitions)
    leader = int((await partitions(kafka_cluster.bootstrap, messages))[partition]["leader"])
    down = [n for n in range(1, REPLICATION + 1) if n != leader]
    kill, start = sigkill(kafka_cluster), restart(kafka_cluster)
    async with sending(load) as stop:
        killed = time.monotonic()
        resent_before = hot.resent
        for node_id in down:
            await kill(node_id)
        # Sends go on being answered (`internal`), each within ANSWER_S (Stream.run).
        while hot.resent < resent_before + 3:
            assert hot.failure is None, hot.failure
            assert time.monotonic() - killed < 120, f"{hot.resent - resent_before} answered"
            await asyncio.sleep(0.1)  # polling the stream, within the deadline
        healed = time.monotonic()
        for node_id in down:
            await start(node_id)
        await until_accepted(hot, 20)
        back = time.monotonic()
        await all_in_sync(kafka_cluster.bootstrap, [messages], REPLICATION)
        await stop()
        for stream in load:
            await stream.check_delivered_once_in_order(api)
    figures["sigkill of two brokers"] = {
        "internal_answers": hot.resent - resent_before,
        "down_s": round(healed - killed, 2),
        "restart_to_accepted_s": round(back - healed, 2),
        **spike(load, killed, healed),
    }
