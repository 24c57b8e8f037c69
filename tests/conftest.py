"""Fixtures that start real services once per test run: Apache Kafka (KRaft, on the local JDK),
an embedded Postgres, a processor and a gateway, as separate processes; Apache Cassandra for
the Scylla message store, started only if a test asks for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from parley.embedded.cassandra import EmbeddedCassandra
from parley.embedded.kafka import EmbeddedKafka
from parley.embedded.postgres import EmbeddedPostgres
from parley.embedded.process import free_port
from schemas.settings import Settings
from storage.postgres.migrate import migrate
from tests.client import Api
from tests.push_receiver import PushReceiver
from tests.stack import Process, Stack, base_env
from topics.admin import ensure_topics


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parley")


@pytest.fixture(scope="session")
def postgres_server(workdir: Path) -> Iterator[EmbeddedPostgres]:
    """A migrated, empty Postgres for this run."""
    server = EmbeddedPostgres(workdir / "postgres")
    asyncio.run(migrate(server.dsn))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: EmbeddedPostgres) -> str:
    return postgres_server.dsn


@pytest.fixture(scope="session")
def kafka(workdir: Path) -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(
        workdir / "kafka",
        free_port(),
        controller_port=free_port(),
        log_path=workdir / "kafka.log",
    ) as kafka:
        yield kafka


@pytest.fixture(scope="session")
def broker(kafka: EmbeddedKafka) -> str:
    return kafka.bootstrap


@pytest.fixture(scope="session")
def cql_server(workdir: Path) -> Iterator[tuple[str, int]]:
    """A real CQL server (Apache Cassandra, one node) for the Scylla store: (host, port)."""
    with EmbeddedCassandra(
        workdir / "cassandra",
        free_port(),
        storage_port=free_port(),
        log_path=workdir / "cassandra.log",
    ) as server:
        yield "127.0.0.1", server.port


@pytest.fixture(scope="session")
def settings(broker: str, postgres_dsn: str, workdir: Path) -> Settings:
    settings = Settings(
        kafka_bootstrap=broker, postgres_dsn=postgres_dsn, data_dir=workdir / "data"
    )
    asyncio.run(ensure_topics(settings))
    return settings


PUSH_SECRET = "test-push-secret"


@pytest.fixture(scope="session")
def push_receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def postgres_stack(
    settings: Settings, workdir: Path, push_receiver: PushReceiver
) -> Iterator[Stack]:
    """The shared stack: messages stored in Postgres (the embedded default)."""
    env = base_env(settings.kafka_bootstrap, settings.postgres_dsn, workdir)
    env.update(
        PARLEY_PUSH_PROVIDER="webhook",
        PARLEY_PUSH_WEBHOOK_URL=push_receiver.url,
        PARLEY_PUSH_WEBHOOK_SECRET=PUSH_SECRET,
        PARLEY_PUSH_RETRY_BASE_S="0.1",
    )
    stack = Stack(workdir, env, settings)
    stack.start_processor()
    stack.start_gateway()
    yield stack
    stack.stop_all()


@pytest.fixture(scope="session")
def stack(postgres_stack: Stack) -> Stack:
    return postgres_stack


CQL_KEYSPACE = "parley_e2e"


@pytest.fixture(scope="session")
def cql_stack(workdir: Path, postgres_dsn: str, cql_server: tuple[str, int]) -> Iterator[Stack]:
    """A second stack whose messages are stored by the Scylla store on Cassandra. It has a
    Kafka of its own: the topics' names are fixed, and two processor groups on one log would
    each store and fan out every message."""
    from storage.scylla import migrate_cluster

    home = workdir / "cql-stack"
    home.mkdir()
    host, port = cql_server
    with EmbeddedKafka(
        home / "kafka",
        free_port(),
        controller_port=free_port(),
        log_path=home / "kafka.log",
    ) as kafka:
        settings = Settings(
            kafka_bootstrap=kafka.bootstrap,
            postgres_dsn=postgres_dsn,
            data_dir=home / "data",
            message_store="scylla",
            scylla_hosts=host,
            scylla_port=port,
            scylla_keyspace=CQL_KEYSPACE,
        )
        asyncio.run(ensure_topics(settings))
        asyncio.run(migrate_cluster([host], port, CQL_KEYSPACE))
        env = base_env(settings.kafka_bootstrap, settings.postgres_dsn, home)
        env.update(
            PARLEY_MESSAGE_STORE="scylla",
            PARLEY_SCYLLA_HOSTS=host,
            PARLEY_SCYLLA_PORT=str(port),
            PARLEY_SCYLLA_KEYSPACE=CQL_KEYSPACE,
        )
        stack = Stack(home, env, settings)
        stack.start_processor()
        stack.start_gateway()
        yield stack
        stack.stop_all()


@pytest.fixture(params=["postgres", "cassandra"])
def stack_on_each_store(request: pytest.FixtureRequest) -> Stack:
    """The stack storing messages in Postgres, then the one storing them on Cassandra. A module
    whose tests must hold on both overrides `stack` with this."""
    name = "postgres_stack" if request.param == "postgres" else "cql_stack"
    stack: Stack = request.getfixturevalue(name)
    return stack


@pytest.fixture
def gateway(stack: Stack) -> Process:
    """The shared gateway (the first one started)."""
    return next(p for p in stack.processes if p.role == "gateway")


@pytest.fixture
async def api(gateway: Process) -> AsyncIterator[Api]:
    async with Api(gateway.url, gateway.ws_url) as client:
        yield client
