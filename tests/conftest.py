"""Fixtures that start real services once per test run: Apache Kafka (KRaft, on the local JDK),
an embedded Postgres, a processor and a gateway, as separate processes; Apache Cassandra for
the Scylla message store, started only if a test asks for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.async_api import Browser, async_playwright

from devstack.embedded.cassandra import EmbeddedCassandra
from devstack.embedded.kafka import EmbeddedKafka
from devstack.embedded.postgres import EmbeddedPostgres
from devstack.embedded.process import free_port
from parley_client import Client, Frame, Login, MessageFrame, Session
from schemas.settings import Settings
from storage.postgres.migrate import migrate
from storage.stores import Stores, open_stores
from tests.frame_check import FrameRecorder, problems, server_frame_validators
from tests.push_receiver import PushReceiver
from tests.stack import Process, Stack, base_env
from topics.admin import ensure_topics

PASSWORD = "correct horse battery"


class Api(Client):
    """The client library with the tests' conveniences: throwaway accounts that share one
    password, channels by id, and sessions that keep every frame they receive."""

    def __init__(self, base_url: str, ws_url: str | None = None) -> None:
        # Generous: password hashing (argon2id) is CPU-bound and the machine may be busy.
        super().__init__(base_url, ws_url, timeout_s=120, keep_frames=True)
        self._hashing = asyncio.Semaphore(8)

    async def new_user(self, prefix: str = "u") -> str:
        """A new account; returns its username (the password is PASSWORD)."""
        username = f"{prefix}{uuid.uuid4().hex[:12]}"
        await self.sign_up(username, PASSWORD)
        return username

    async def add_device(self, username: str, device_name: str | None = None) -> Login:
        return await self.log_in(username, PASSWORD, device_name)

    async def new_device(self, prefix: str = "u", *, group_adds: str | None = "everyone") -> Login:
        """A new user with one device, whom anyone may add to groups: tests of other things
        make groups of users who are not friends. `group_adds` says otherwise (None: the
        account's default, friends only; tests/test_group_adds.py)."""
        # Bounded: a hundred concurrent sign-ups would queue on the server's hashing threads.
        async with self._hashing:
            device = await self.add_device(await self.new_user(prefix))
        if group_adds is not None:
            await self.allow_group_adds(device, group_adds)
        return device

    async def make_friends(self, a: Login, b: Login) -> None:
        """a asks, b accepts."""
        assert (await self.befriend(a, b.user_id))["status"] == "requested"
        assert (await self.befriend(b, a.user_id))["status"] == "friend"

    async def direct(self, device: Login, user_id: str) -> str:
        return (await self.open_direct(device, user_id))["channel_id"]

    async def group(self, device: Login, member_ids: list[str], name: str = "group") -> str:
        return (await self.create_group(device, name, member_ids))["channel_id"]


async def handled(socket: Session) -> Frame:
    """Once every frame sent on the socket so far has been handled by the gateway: it handles
    a socket's frames in order and refuses a frame of unknown type at once. Returns that
    refusal (an `invalid` error frame)."""
    await socket.send_frame({"type": "teleport"})
    frame = await socket.until(lambda f: f["type"] == "error" and "teleport" in f["message"])
    assert frame["code"] == "invalid", frame
    return frame


@contextlib.asynccontextmanager
async def extra_gateway(stack: Stack, **env: str) -> AsyncIterator[Process]:
    """A gateway of the test's own, with these settings (`PARLEY_*` variables), stopped after."""
    gateway = await asyncio.to_thread(stack.start_gateway, **env)
    try:
        yield gateway
    finally:
        await asyncio.to_thread(gateway.stop)


async def sent(socket: Session, channel_id: str, texts: list[str]) -> list[str]:
    """Send texts and wait for their echoes: their message ids, in order."""
    before = len(socket.messages(channel_id))
    for text in texts:
        await socket.accepted(await socket.send_message(channel_id, text))
    echoes = await socket.collect_messages(channel_id, before + len(texts))
    return [m["message_id"] for m in echoes[before:]]


MARK = "(mark)"


async def marked(sender: Session, channel_id: str, *readers: Session) -> None:
    """Send one more message, the mark, and read until it arrived on the sender and every
    reader: what the channel had yet to deliver before it (a late duplicate included) has then
    arrived, so the frames before it can be judged (`before_mark`). Frames read stay unread."""
    await sender.send_message(channel_id, MARK)
    for socket in {id(s): s for s in (sender, *readers)}.values():
        while not any(m["text"] == MARK for m in socket.messages(channel_id)):
            await socket.collect_messages(channel_id, len(socket.messages(channel_id)) + 1)


def before_mark(socket: Session, channel_id: str) -> list[MessageFrame]:
    """The socket's messages of the channel before the mark (see `marked`)."""
    got = socket.messages(channel_id)
    return got[: [m["text"] for m in got].index(MARK)]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Until `check()` is true, asked every 0.1 s; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)  # polling, within the deadline


async def metric(url: str, name: str) -> float:
    """The value of an unlabelled metric of the Parley process serving `url`."""
    async with Client(url) as client:
        text = await client.metrics()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics of {url}")


async def wait_connected(stores: Stores, user_id: str, connected: bool) -> None:
    """Until the presence processor has recorded the user's sockets as open (or all closed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = (await stores.presence.get([user_id])).get(user_id)
        if state is not None and state.connected == connected:
            return
        await asyncio.sleep(0.05)  # polling the store, within the deadline
    raise TimeoutError(f"{user_id} never became connected={connected}")


async def push_marker(api: Api, receiver: PushReceiver, sender: Login, users: list[Login]) -> str:
    """Send a message into a new group of `users` (none connected, each with a push endpoint)
    and wait for each one's push of it. The notifier handles a user's inbox records in order,
    a batch at a time, so by then every push an earlier message could make has been made (one
    in the marker's own batch aside). Returns the marker's channel."""
    group = await api.group(sender, [u.user_id for u in users], name="marker")
    async with await api.connect(sender) as socket:
        await socket.accepted(await socket.send_message(group, "marker"))
        for user in users:
            await receiver.wait_channel(user.user_id, group)
    return group


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cluster tests (three brokers or three Cassandra nodes each, minutes of chaos) run
    only when a marker expression names them (`-m cluster`): `make test` leaves them out, and
    .ci/run runs them in a step of their own."""
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    left_out = [item for item in items if item.get_closest_marker("cluster") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item.get_closest_marker("cluster") is None]


@pytest.fixture(scope="session", autouse=True)
def server_frames_match_the_asyncapi_document() -> Iterator[None]:
    """Every frame the tests' sessions read, checked against the AsyncAPI document at the end
    of the run (a sample: tests/frame_check.py): a mismatch fails the run, reported as an
    error of its last test's teardown."""
    recorder = FrameRecorder()
    Session.observer = recorder.record
    yield
    Session.observer = None
    if recorder.frames:
        from gateway.asyncapi import document

        found = problems(recorder.frames, server_frame_validators(document()))
        assert not found, "server frames off the AsyncAPI document:\n" + "\n".join(found[:50])


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a browser test module keeps its screenshots: `<basetemp>/browser-artifacts/` for
    tests/test_browser.py, `browser-people-artifacts/` for tests/test_browser_people.py, …"""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    path = tmp_path_factory.getbasetemp() / f"{module.replace('_', '-')}-artifacts"
    path.mkdir(exist_ok=True)
    print(f"browser screenshots: {path}")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """The system's Chromium, driven by Playwright (tests/browser_pages.py)."""
    from tests.browser_pages import launch  # it imports this module

    async with async_playwright() as playwright:
        launched = await launch(playwright)
        yield launched
        await launched.close()


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


def migrated_database(postgres_dsn: str, prefix: str) -> str:
    """The DSN of a new, migrated database on the suite's Postgres, for a module whose tests
    write or empty tables the shared stack's database must keep."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute(f"CREATE DATABASE {name}".encode())
        dsn = postgres_dsn.replace("/postgres?", f"/{name}?")
        assert dsn != postgres_dsn
        await migrate(dsn)
        return dsn

    return asyncio.run(create())


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
async def stores(settings: Settings) -> AsyncIterator[Stores]:
    """The stores of the shared stack, opened as a processor opens them."""
    opened = await open_stores(settings)
    yield opened
    await opened.close()


@pytest.fixture
def gateway(stack: Stack) -> Process:
    """The shared gateway (the first one started)."""
    return next(p for p in stack.processes if p.role == "gateway")


@pytest.fixture
async def api(gateway: Process) -> AsyncIterator[Api]:
    async with Api(gateway.url, gateway.ws_url) as client:
        yield client


@pytest.fixture
def env(tmp_path: Path, gateway: Process) -> dict[str, str]:
    """The environment of a terminal of its own (the terminal client's tests): the login stored under tmp_path, times shown in UTC."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return {
        **clean,
        "PARLEY_CONFIG_DIR": str(tmp_path / "config"),
        "PARLEY_URL": gateway.url,
        "PARLEY_PASSWORD": PASSWORD,
        "TZ": "UTC",
    }
