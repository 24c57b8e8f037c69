"""Fixtures that start real services once per test run: the embedded Kafka-protocol broker,
an embedded Postgres, a processor and a gateway, as separate processes."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from parley.embedded import EmbeddedPostgres, free_port, start_broker
from parley.settings import Settings
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
def broker(workdir: Path) -> Iterator[str]:
    port = free_port()
    process = start_broker(port, (workdir / "broker.log").open("ab"))
    yield f"127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


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
def stack(settings: Settings, workdir: Path, push_receiver: PushReceiver) -> Iterator[Stack]:
    env = base_env(settings.kafka_bootstrap, settings.postgres_dsn, workdir)
    env.update(
        PARLEY_PUSH_PROVIDER="webhook",
        PARLEY_PUSH_WEBHOOK_URL=push_receiver.url,
        PARLEY_PUSH_WEBHOOK_SECRET=PUSH_SECRET,
        PARLEY_PUSH_RETRY_BASE_S="0.1",
    )
    stack = Stack(workdir, env)
    stack.start_processor()
    stack.start_gateway()
    yield stack
    stack.stop_all()


@pytest.fixture
def gateway(stack: Stack) -> Process:
    """The shared gateway (the first one started)."""
    return next(p for p in stack.processes if p.role == "gateway")


@pytest.fixture
async def api(gateway: Process) -> AsyncIterator[Api]:
    async with Api(gateway.url, gateway.ws_url) as client:
        yield client
