"""The MessageStore contract: one suite, run against every backend.

Postgres runs everywhere (the embedded one from conftest), and so does the Scylla store on a real
CQL server: Apache Cassandra from conftest, the same protocol and driver. The Scylla store on
Scylla itself runs where Docker can start one with testcontainers; elsewhere that third is
skipped, never replaced by a mock.
Backends share one database per run, so every test uses fresh random channel and device ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from devstack.embedded.process import free_port
from schemas.ids import SEQUENCE_BITS, id_floor, id_unix_ms, iso_ms, now_ms
from schemas.message import Message
from schemas.settings import Settings
from storage.buckets import bucket_of
from storage.errors import PermanentStoreError, RetryableStoreError
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.pool import Pool, open_pool
from storage.protocols import MessageStore

SCYLLA_IMAGE = "scylladb/scylla:6.2"
SCYLLA_KEYSPACE = "parley_contract"
SCYLLA_STARTUP_S = 240.0
NO_DOCKER = "needs Docker to run a real Scylla (testcontainers); none on this machine"

DAY_MS = 24 * 3600 * 1000


# --- backends ----------------------------------------------------------------------------------


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


async def _migrate_when_cql_answers(host: str, port: int, deadline: float) -> None:
    """Apply the schema once Scylla serves CQL. A mapped port accepts TCP before Scylla listens,
    so readiness is a CQL session that opens, retried until the deadline."""
    from storage.scylla import connect_scylla, migrate_scylla, shutdown_scylla

    while True:
        try:
            session = await connect_scylla([host], port=port)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    try:
        await migrate_scylla(session, SCYLLA_KEYSPACE)
    finally:
        await shutdown_scylla(session)


@pytest.fixture(scope="session")
def scylla_endpoint() -> Iterator[tuple[str, int]]:
    """A real single-node Scylla in Docker with the schema applied: (host, CQL port)."""
    if not _docker_available():
        pytest.skip(NO_DOCKER)
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import PortWaitStrategy

    container = (
        DockerContainer(SCYLLA_IMAGE)
        .with_command("--smp 1 --developer-mode 1 --overprovisioned 1")
        .with_exposed_ports(9042)
        .waiting_for(PortWaitStrategy(9042).with_startup_timeout(SCYLLA_STARTUP_S))
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(9042))
        asyncio.run(_migrate_when_cql_answers(host, port, time.monotonic() + SCYLLA_STARTUP_S))
        yield host, port
    finally:
        container.stop()


@pytest.fixture(scope="session")
def cql_endpoint(cql_server: tuple[str, int]) -> tuple[str, int]:
    """The embedded Cassandra with the store's schema applied: (host, CQL port)."""
    host, port = cql_server
    asyncio.run(_migrate_when_cql_answers(host, port, time.monotonic() + SCYLLA_STARTUP_S))
    return host, port


@dataclass(frozen=True)
class Backend:
    name: str
    postgres_dsn: str = ""
    scylla_host: str = ""
    scylla_port: int = 0


@pytest.fixture(params=["postgres", "cassandra", "scylla"])
def backend(request: pytest.FixtureRequest) -> Backend:
    # Session services are resolved here, outside the test's event loop: they start with
    # asyncio.run, which cannot run inside a running loop.
    if request.param == "postgres":
        return Backend("postgres", postgres_dsn=request.getfixturevalue("postgres_dsn"))
    endpoint = "cql_endpoint" if request.param == "cassandra" else "scylla_endpoint"
    host, port = request.getfixturevalue(endpoint)
    return Backend(request.param, scylla_host=host, scylla_port=port)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[MessageStore]:
    if backend.name == "postgres":
        pool = await open_pool(Settings(postgres_dsn=backend.postgres_dsn))
        try:
            yield PostgresMessageStore(pool)
        finally:
            await pool.close()
        return
    from storage.scylla import open_scylla_message_store

    scylla = await open_scylla_message_store(
        [backend.scylla_host], SCYLLA_KEYSPACE, port=backend.scylla_port
    )
    try:
        yield scylla
    finally:
        await scylla.close()


# --- helpers -----------------------------------------------------------------------------------


def fresh() -> str:
    return str(uuid.uuid4())


def message(
    channel_id: str,
    message_id: int,
    *,
    device: str | None = None,
    client_msg_id: str | None = None,
    text: str | None = None,
) -> Message:
    return Message(
        channel_id=channel_id,
        message_id=message_id,
        sender_id=f"user-{channel_id[:8]}",
        sender_device_id=device or fresh(),
        client_msg_id=client_msg_id or fresh(),
        text=f"message {message_id}" if text is None else text,
        sent_at=iso_ms(id_unix_ms(message_id)),
    )


def ids(messages: list[Message]) -> list[int]:
    return [m.message_id for m in messages]


def an_hour_ago() -> int:
    return id_floor(now_ms() - 3600 * 1000)


# --- the contract ------------------------------------------------------------------------------


async def test_pages_are_ascending_and_limited_newest_before_and_after(store: MessageStore) -> None:
    channel = fresh()
    sent = [message(channel, an_hour_ago() + 10 * i) for i in range(10)]
    await store.insert(sent)
    i = ids(sent)

    assert await store.page(channel, limit=4) == sent[6:]
    assert await store.page(channel, limit=100) == sent
    assert ids(await store.page(channel, before=i[5], limit=3)) == i[2:5]
    assert ids(await store.page(channel, before=i[5], limit=100)) == i[:5]
    assert ids(await store.page(channel, before=i[0] + 1, limit=3)) == i[:1]
    assert await store.page(channel, before=i[0], limit=3) == []
    assert ids(await store.page(channel, after=i[5], limit=3)) == i[6:9]
    assert ids(await store.page(channel, after=i[5], limit=100)) == i[6:]
    assert ids(await store.page(channel, after=i[0] - 1, limit=2)) == i[:2]
    assert await store.page(channel, after=i[9], limit=3) == []
    # Cursors between stored ids work too: ids are compared, not looked up.
    assert ids(await store.page(channel, before=i[5] - 1, limit=2)) == i[3:5]
    assert ids(await store.page(channel, after=i[5] + 1, limit=2)) == i[6:8]


async def test_a_channel_without_messages_has_empty_pages(store: MessageStore) -> None:
    channel = fresh()
    cursor = an_hour_ago()
    assert await store.page(channel, limit=50) == []
    assert await store.page(channel, before=cursor, limit=50) == []
    assert await store.page(channel, after=cursor, limit=50) == []


async def test_inserting_the_same_messages_again_stores_them_once(store: MessageStore) -> None:
    channel = fresh()
    sent = [message(channel, an_hour_ago() + i) for i in range(5)]
    await store.insert(sent)
    await store.insert(sent)
    later = message(channel, sent[-1].message_id + 1)
    await store.insert([*sent[2:], later, sent[0]])

    assert await store.page(channel, limit=100) == [*sent, later]
    assert await store.last_message_ids([channel]) == {channel: later.message_id}
    keys = [(m.sender_device_id, m.client_msg_id) for m in sent]
    assert await store.find_sent(keys) == dict(zip(keys, sent, strict=True))


async def test_a_message_already_stored_under_its_id_is_left_as_it_is(store: MessageStore) -> None:
    channel = fresh()
    original = message(channel, an_hour_ago(), text="original")
    await store.insert([original])
    await store.insert([original.model_copy(update={"text": "rewritten"})])

    assert await store.page(channel, limit=10) == [original]


async def test_the_first_id_to_claim_a_send_is_the_only_one_stored(store: MessageStore) -> None:
    channel, device, client_msg_id = fresh(), fresh(), fresh()
    first = message(channel, an_hour_ago(), device=device, client_msg_id=client_msg_id, text="1")
    retry = message(
        channel, first.message_id + 7, device=device, client_msg_id=client_msg_id, text="2"
    )
    await store.insert([first])
    await store.insert([retry])

    assert await store.page(channel, limit=10) == [first]
    assert await store.page(channel, after=first.message_id, limit=10) == []
    assert await store.find_sent([(device, client_msg_id)]) == {(device, client_msg_id): first}
    assert await store.last_message_ids([channel]) == {channel: first.message_id}


async def test_insert_new_stores_new_sends_and_nothing_of_a_call_with_a_stored_key(
    store: MessageStore,
) -> None:
    channel, device, client_msg_id = fresh(), fresh(), fresh()
    base = an_hour_ago()
    first = message(channel, base, device=device, client_msg_id=client_msg_id, text="first")
    assert await store.insert_new([first, message(channel, base + 1)])
    stored = await store.page(channel, limit=10)
    assert ids(stored) == [base, base + 1]

    # The same send under a later id, beside a new one: the whole call stores nothing.
    resend = message(channel, base + 2, device=device, client_msg_id=client_msg_id, text="2")
    bystander = message(channel, base + 3)
    assert not await store.insert_new([bystander, resend])
    assert await store.page(channel, limit=10) == stored
    assert await store.find_sent([(bystander.sender_device_id, bystander.client_msg_id)]) == {}
    assert await store.last_message_ids([channel]) == {channel: base + 1}


async def test_within_one_insert_the_first_message_of_a_send_wins(store: MessageStore) -> None:
    channel, device, client_msg_id = fresh(), fresh(), fresh()
    base = an_hour_ago()
    first = message(channel, base + 5, device=device, client_msg_id=client_msg_id, text="first")
    other = message(channel, base + 9, device=device, client_msg_id=client_msg_id, text="other")
    bystander = message(channel, base + 1)
    await store.insert([bystander, first, other])

    assert await store.page(channel, limit=10) == [bystander, first]
    assert await store.find_sent([(device, client_msg_id)]) == {(device, client_msg_id): first}


async def test_find_sent_returns_nothing_for_unknown_keys(store: MessageStore) -> None:
    channel = fresh()
    known = message(channel, an_hour_ago())
    await store.insert([known])
    known_key = (known.sender_device_id, known.client_msg_id)

    assert await store.find_sent([]) == {}
    assert await store.find_sent([(fresh(), fresh())]) == {}
    # Same device, other client id; and same client id, other device.
    assert await store.find_sent([(known.sender_device_id, fresh())]) == {}
    assert await store.find_sent([(fresh(), known.client_msg_id)]) == {}
    assert await store.find_sent([(fresh(), fresh()), known_key]) == {known_key: known}


async def test_last_message_ids_name_each_channels_newest_id(store: MessageStore) -> None:
    busy, quiet, empty = fresh(), fresh(), fresh()
    base = an_hour_ago()
    newest = message(busy, base + 300)
    # Older messages stored after the newest one never move the head back.
    await store.insert([newest])
    await store.insert([message(busy, base + 100), message(busy, base + 200)])
    await store.insert([message(quiet, base + 50)])

    assert await store.last_message_ids([busy, quiet, empty]) == {
        busy: newest.message_id,
        quiet: base + 50,
    }
    assert await store.last_message_ids([empty]) == {}
    assert await store.last_message_ids([]) == {}

    newer = message(busy, base + 301)
    await store.insert([newer])
    assert await store.last_message_ids([busy]) == {busy: newer.message_id}


async def test_pages_walk_across_time_buckets_in_both_directions(store: MessageStore) -> None:
    channel = fresh()
    start_ms = now_ms() - 100 * DAY_MS
    times = [0, 0, 30 * DAY_MS, 60 * DAY_MS, 60 * DAY_MS, 90 * DAY_MS]
    sent = [message(channel, id_floor(start_ms + t) + n) for n, t in enumerate(times)]
    # Four buckets holding messages, with empty buckets between them.
    assert len({bucket_of(m.message_id) for m in sent}) == 4
    await store.insert(list(reversed(sent)))
    i = ids(sent)

    assert ids(await store.page(channel, limit=3)) == i[3:]
    assert ids(await store.page(channel, limit=100)) == i
    assert ids(await store.page(channel, before=i[5], limit=100)) == i[:5]
    assert ids(await store.page(channel, before=i[5], limit=3)) == i[2:5]
    assert ids(await store.page(channel, before=i[2], limit=5)) == i[:2]
    assert ids(await store.page(channel, before=i[3], limit=2)) == i[1:3]
    assert ids(await store.page(channel, after=i[0], limit=3)) == i[1:4]
    assert ids(await store.page(channel, after=i[1], limit=100)) == i[2:]
    assert ids(await store.page(channel, after=i[2], limit=1)) == i[3:4]
    assert await store.page(channel, after=i[5], limit=5) == []
    assert await store.page(channel, before=i[0], limit=5) == []
    # Cursors in empty buckets, and beyond either end of the channel.
    gap = id_floor(start_ms + 45 * DAY_MS)
    assert ids(await store.page(channel, before=gap, limit=100)) == i[:3]
    assert ids(await store.page(channel, after=gap, limit=100)) == i[3:]
    assert ids(await store.page(channel, before=id_floor(now_ms()), limit=2)) == i[4:]
    assert ids(await store.page(channel, after=id_floor(start_ms - DAY_MS), limit=2)) == i[:2]
    assert await store.last_message_ids([channel]) == {channel: i[5]}


async def test_pages_never_show_a_message_whose_older_neighbour_is_not_stored_yet(
    backend: Backend, store: MessageStore
) -> None:
    """An insert whose newer row is written and its older one not yet (Scylla shows a batch's
    rows one by one, in any order; or the writer died between them): a page must not show the
    newer one, or paging on from it would skip the older one for good."""
    if backend.name == "postgres":
        pytest.skip("Postgres stores a batch in one transaction: no half of it is ever visible")
    from storage.scylla import connect_scylla, shutdown_scylla

    channel, base = fresh(), an_hour_ago()
    first = [message(channel, base + 1), message(channel, base + 2)]
    late, early = message(channel, base + 4), message(channel, base + 3)
    await store.insert(first)
    session = await connect_scylla([backend.scylla_host], port=backend.scylla_port)
    try:  # the newer row of the next batch, written alone
        await asyncio.to_thread(
            session.execute,
            f"INSERT INTO {SCYLLA_KEYSPACE}.messages (bucket, channel_id, message_id, sender_id,"
            ' sender_device_id, client_msg_id, "text", sent_at) VALUES (%s, %s, %s, %s, %s, %s,'
            " %s, %s)",
            (
                bucket_of(late.message_id),
                *(late.channel_id, late.message_id, late.sender_id, late.sender_device_id),
                *(late.client_msg_id, late.text, late.sent_at),
            ),
        )
    finally:
        await shutdown_scylla(session)

    assert ids(await store.page(channel, after=first[-1].message_id, limit=10)) == []
    assert ids(await store.page(channel, limit=10)) == ids(first)
    assert ids(await store.page(channel, before=base + 10, limit=10)) == ids(first)
    await store.insert([early, late])  # the batch completes (a retry)
    assert ids(await store.page(channel, after=first[-1].message_id, limit=10)) == [
        base + 3,
        base + 4,
    ]


async def test_unread_counts_skip_the_readers_own_messages_and_stop_at_the_cap(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    mine = [message(channel, base + n).model_copy(update={"sender_id": "me"}) for n in (2, 4)]
    theirs = [message(channel, base + n) for n in (1, 3, 5, 6, 7)]
    await store.insert(sorted(mine + theirs, key=lambda m: m.message_id))

    async def count(after: int, not_from: str = "me", cap: int = 100, c: str = channel) -> int:
        return (await store.unread_and_mentions({c: after}, reader=not_from, cap=cap))[c][0]

    assert await count(base) == 5
    assert await count(base + 3) == 3
    assert await count(base + 3, cap=2) == 2
    assert await count(base + 7) == 0
    assert await count(base, not_from="nobody") == 7
    assert await count(base, c=fresh()) == 0
    # Across time buckets: a marker 90 days back counts everything after it.
    old = id_floor(now_ms() - 90 * DAY_MS)
    await store.insert([message(channel, old + 1)])
    assert await count(old) == 6
    assert await store.unread_and_mentions({}, reader="me", cap=100) == {}


async def test_unread_counts_answer_for_many_channels_at_once(store: MessageStore) -> None:
    base = an_hour_ago()
    channels = [fresh() for _ in range(40)]
    for n, channel in enumerate(channels):
        # Channel n holds n messages from others and one of the reader's own.
        theirs = [message(channel, base + 1 + i) for i in range(n)]
        own = message(channel, base + 1 + n).model_copy(update={"sender_id": "me"})
        await store.insert([*theirs, own])
    quiet = fresh()  # no messages at all
    after = {channel: base for channel in channels} | {channels[30]: base + 10, quiet: base}
    counts = {
        c: unread
        for c, (unread, _) in (await store.unread_and_mentions(after, reader="me", cap=25)).items()
    }
    expected = {channel: min(n, 25) for n, channel in enumerate(channels)}
    expected[channels[30]] = 20  # messages 11..30 of channel 30
    assert counts == {**expected, quiet: 0}


async def test_mentions_are_stored_with_their_message_and_unread_ones_counted(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()

    def mentioning(n: int, *who: str) -> Message:
        return message(channel, base + n).model_copy(update={"mentions": list(who) or None})

    rows = [mentioning(1, "me"), mentioning(2), mentioning(3, "you", "me"), mentioning(4, "you")]
    rows.append(mentioning(5, "me"))
    await store.insert(rows)
    stored = await store.page(channel, after=base, limit=10)
    assert [m.mentions for m in stored] == [["me"], None, ["you", "me"], ["you"], ["me"]]
    assert (await store.find_sent([(rows[2].sender_device_id, rows[2].client_msg_id)])).popitem()[
        1
    ].mentions == ["you", "me"]

    async def count(after: int, of: str = "me", cap: int = 100, c: str = channel) -> int:
        return (await store.unread_and_mentions({c: after}, reader=of, cap=cap))[c][1]

    assert await store.unread_and_mentions({channel: base}, reader="me", cap=100) == {
        channel: (5, 3)
    }
    assert await count(base) == 3
    assert await count(base + 1) == 2
    assert await count(base, of="you") == 2
    assert await count(base, cap=2) == 2
    assert await count(base, of="nobody") == 0
    assert await count(base, c=fresh()) == 0
    # A deleted message mentions nobody any more.
    await store.insert([change(rows[4], base + 6, "delete")])
    assert await count(base) == 2
    assert (await store.unread_and_mentions({channel: base}, reader="me", cap=100))[channel] == (
        4,
        2,
    )
    assert await store.unread_and_mentions({}, reader="me", cap=100) == {}


def change(
    target: Message,
    message_id: int,
    kind: str,
    *,
    text: str = "",
    emoji: str | None = None,
    removed: bool = False,
    sender_id: str | None = None,
) -> Message:
    return message(target.channel_id, message_id, text=text).model_copy(
        update={
            "kind": kind,
            "target_id": target.message_id,
            "emoji": emoji,
            "removed": removed,
            "sender_id": sender_id or target.sender_id,
        }
    )


async def test_changes_are_rows_in_order_and_messages_keep_their_latest_state(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    first, second = message(channel, base + 1), message(channel, base + 2)
    edit1 = change(first, base + 3, "edit", text="better")
    edit2 = change(first, base + 4, "edit", text="best")
    like = change(second, base + 5, "reaction", emoji="👍", sender_id="ann")
    like_too = change(second, base + 6, "reaction", emoji="👍", sender_id="bo")
    heart = change(second, base + 7, "reaction", emoji="❤️", sender_id="ann")
    unlike = change(second, base + 8, "reaction", emoji="👍", sender_id="ann", removed=True)
    rows = [first, second, edit1, edit2, like, like_too, heart, unlike]
    await store.insert(rows[:4])
    await store.insert(rows[4:])

    page = await store.page(channel, after=base, limit=100)
    assert ids(page) == ids(rows)  # sync reads the changes too, in order
    history = await store.page(channel, limit=100, changes=False)
    assert ids(history) == [first.message_id, second.message_id]
    latest_first, latest_second = history
    assert (latest_first.text, latest_first.edited_at) == ("best", edit2.sent_at)
    assert latest_second.reactions == {"❤️": ["ann"], "👍": ["bo"]}
    assert await store.get(channel, first.message_id) == latest_first
    assert await store.get(channel, base + 99) is None
    assert (await store.get(channel, like.message_id)) == like.model_copy(update={"text": ""})
    unread = await store.unread_and_mentions({channel: base}, reader="me", cap=100)
    assert unread == {channel: (2, 0)}  # messages only

    # Applied again, in any order (a retry, a replay over the store): the same state.
    await store.insert([edit1, unlike, like])
    assert await store.page(channel, limit=100, changes=False) == history
    # Later pages by `before`, and `around`-like reads, skip the changes too.
    assert ids(await store.page(channel, before=base + 8, limit=1, changes=False)) == [
        second.message_id
    ]


async def test_replies_are_counted_on_their_message_and_paged_as_its_thread(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    root, other = message(channel, base + 1), message(channel, base + 2)
    replies = [
        message(channel, base + 10 * i).model_copy(update={"reply_to": root.message_id})
        for i in range(1, 6)
    ]
    aside = message(channel, base + 3).model_copy(update={"reply_to": other.message_id})
    # The root and the first replies in one insert, the rest in others.
    await store.insert([root, other, replies[0], replies[1], aside])
    await store.insert(replies[2:4])
    await store.insert(replies[4:])
    # A reply's count or quote given on a row is not stored: the store counts.
    counted = replies[0].model_copy(update={"reply_count": 7})
    await store.insert([counted])

    first = await store.get(channel, root.message_id)
    assert first is not None and first.reply_count == 5 and first.reply_to is None
    assert first.last_reply_id == replies[-1].message_id
    many = await store.get_many(channel, [root.message_id, aside.message_id, base + 999])
    assert many == {root.message_id: first, aside.message_id: await store.get(channel, base + 3)}
    assert (await store.page(channel, limit=100, changes=False))[1].reply_count == 1
    thread = await store.page(channel, limit=100, changes=False, thread=root.message_id)
    assert ids(thread) == ids(replies)
    assert [m.reply_to for m in thread] == [root.message_id] * 5
    assert ids(await store.page(channel, limit=2, changes=False, thread=root.message_id)) == ids(
        replies[3:]
    )
    after = await store.page(
        channel, after=replies[1].message_id, limit=2, changes=False, thread=root.message_id
    )
    assert ids(after) == ids(replies[2:4])
    before = await store.page(
        channel, before=replies[3].message_id, limit=2, changes=False, thread=root.message_id
    )
    assert ids(before) == ids(replies[1:3])
    assert await store.page(channel, limit=10, changes=False, thread=replies[0].message_id) == []

    # Stored again, in any grouping (a retry, a replay): the same counts; a deleted reply
    # still counts (its tombstone stays in the thread), and the deleted root keeps its count.
    await store.insert([root, *replies, aside])
    await store.insert(
        [change(replies[0], base + 100, "delete"), change(root, base + 101, "delete")]
    )
    again = await store.get(channel, root.message_id)
    assert again is not None and (again.reply_count, again.deleted) == (5, True)
    thread = await store.page(channel, limit=100, changes=False, thread=root.message_id)
    assert ids(thread) == ids(replies) and thread[0].deleted


async def test_pins_and_unpins_set_a_message_pinned_in_id_order_and_a_delete_unpins(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    first, second, third = (message(channel, base + i) for i in (1, 2, 3))
    pin_first = change(first, base + 10, "pin", sender_id="ann")
    pin_second = change(second, base + 11, "pin", sender_id="bo")
    unpin_first = change(first, base + 12, "unpin", sender_id="bo")
    refused = change(third, base + 13, "pin", sender_id="ann").model_copy(
        update={"refused": "pin_limit"}
    )
    pin_first_again = change(first, base + 14, "pin", sender_id="bo")
    rows = [first, second, third, pin_first, pin_second, unpin_first, refused, pin_first_again]
    await store.insert(rows[:5])
    assert ids(await store.pins(channel)) == [second.message_id, first.message_id]
    await store.insert(rows[5:])

    pinned = await store.pins(channel)
    assert ids(pinned) == [first.message_id, second.message_id]  # the newest pin first
    assert (pinned[0].pinned_by, pinned[0].pinned_at) == ("bo", pin_first_again.sent_at)
    history = await store.page(channel, limit=100, changes=False)
    assert [m.pinned_by for m in history] == ["bo", "bo", None]  # the refused pin pinned nothing
    page = await store.page(channel, after=base, limit=100)
    assert ids(page) == ids(rows) and page[6].refused == "pin_limit"
    # Applied again, in any order (a retry, a replay): the same state.
    await store.insert([unpin_first, pin_first, refused])
    assert await store.page(channel, limit=100, changes=False) == history

    # A delete unpins; an unpin or pin after it changes nothing.
    await store.insert([change(second, base + 20, "delete")])
    await store.insert([change(second, base + 21, "pin", sender_id="ann")])
    assert ids(await store.pins(channel)) == [first.message_id]
    gone = await store.get(channel, second.message_id)
    assert gone is not None and gone.deleted and gone.pinned_by is None


async def test_a_delete_removes_the_text_of_the_message_and_of_its_edits(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    original = message(channel, base + 1, text="secret")
    edit = change(original, base + 2, "edit", text="still secret")
    like = change(original, base + 3, "reaction", emoji="👍", sender_id="ann")
    delete = change(original, base + 4, "delete")
    late_edit = change(original, base + 5, "edit", text="back from the dead?")
    await store.insert([original, edit, like])
    await store.insert([delete])
    await store.insert([late_edit])

    rows = await store.page(channel, after=base, limit=100)
    assert [r.text for r in rows] == ["", "", "", "", ""]
    (tombstone,) = await store.page(channel, limit=100, changes=False)
    assert (tombstone.deleted, tombstone.text, tombstone.reactions) == (True, "", None)
    assert tombstone.wire()["deleted"] is True
    # A replay of the whole channel into this store changes nothing.
    await store.insert([original, edit, like, delete, late_edit])
    assert await store.page(channel, after=base, limit=100) == rows


async def test_sent_by_pages_one_senders_messages_across_buckets_in_their_latest_state(
    store: MessageStore,
) -> None:
    channel, start_ms = fresh(), now_ms() - 100 * DAY_MS
    rows: list[Message] = []
    mine: list[Message] = []
    for i in range(30):  # over several time buckets
        row = message(channel, id_floor(start_ms + i * 3 * DAY_MS) + i, text=f"text {i}")
        if i % 3 == 0:
            row = row.model_copy(update={"sender_id": "me"})
            mine.append(row)
        rows.append(row)
    last = rows[-1].message_id
    edit = change(mine[1], last + 1, "edit", text="edited")
    delete = change(mine[2], last + 2, "delete")
    like = change(rows[1], last + 3, "reaction", emoji="👍", sender_id="me")
    assert len({bucket_of(m.message_id) for m in rows}) > 3
    await store.insert(rows)
    await store.insert([edit, delete, like])

    pages: list[list[Message]] = []
    after = 0
    while page := await store.sent_by(channel, "me", after=after, limit=4):
        pages.append(page)
        after = page[-1].message_id
    assert [len(p) for p in pages] == [4, 4, 2]
    got = [m for p in pages for m in p]
    assert ids(got) == ids(mine)  # messages only: not the edit, the delete or the reaction
    assert all(m.sender_id == "me" and m.kind == "message" for m in got)
    assert (got[1].text, got[1].edited_at) == ("edited", edit.sent_at)
    assert (got[2].text, got[2].deleted) == ("", True)  # a deleted message keeps no text
    assert [m.text for m in got[3:]] == [m.text for m in mine[3:]]
    assert await store.sent_by(channel, "nobody", after=0, limit=4) == []
    assert await store.sent_by(fresh(), "me", after=0, limit=4) == []


async def test_deleted_rows_are_the_message_and_its_edits_with_blank_texts(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    original = message(channel, base + 1, text="secret")
    edit = change(original, base + 2, "edit", text="still secret")
    like = change(original, base + 3, "reaction", emoji="👍", sender_id="ann")
    kept = message(channel, base + 4, text="kept")
    delete = change(original, base + 5, "delete")
    await store.insert([original, edit, like, kept])
    assert await store.deleted_rows(channel, original.message_id) == []  # not deleted yet
    await store.insert([delete])

    rows = await store.deleted_rows(channel, original.message_id)
    assert [(r.message_id, r.kind, r.text) for r in rows] == [
        (original.message_id, "message", ""),
        (edit.message_id, "edit", ""),
    ]
    assert rows[0].deleted
    assert (rows[0].sender_device_id, rows[0].client_msg_id) == (
        original.sender_device_id,
        original.client_msg_id,
    )
    assert await store.deleted_rows(channel, kept.message_id) == []
    assert await store.deleted_rows(channel, base + 99) == []


async def test_a_refused_reaction_is_stored_as_taken_back_with_its_reason(
    store: MessageStore,
) -> None:
    channel, base = fresh(), an_hour_ago()
    liked = message(channel, base + 1)
    like = change(liked, base + 2, "reaction", emoji="👍", sender_id="ann")
    refused = change(liked, base + 3, "reaction", emoji="🎉", sender_id="ann", removed=True)
    refused = refused.model_copy(update={"refused": "user_limit"})
    await store.insert([liked, like, refused])

    assert (await store.page(channel, after=base, limit=10))[2] == refused
    assert await store.get(channel, refused.message_id) == refused
    assert refused.wire()["refused"] == "user_limit"
    assert (await store.get(channel, liked.message_id)) == liked.model_copy(
        update={"reactions": {"👍": ["ann"]}}
    )


TOGGLES = 1_000


async def test_reactions_taken_back_and_given_again_leave_history_reads_as_they_were(
    store: MessageStore, backend: Backend
) -> None:
    """A message's reactions are its current ones only, however often they came and went, and
    a history page reads its own rows, not the channel's changes."""
    if backend.name == "postgres":
        # The test's own store, on one connection: the server's counters of that connection
        # are those of this test alone.
        settings = Settings(
            postgres_dsn=backend.postgres_dsn, postgres_pool_min=1, postgres_pool_max=1
        )
        pool = await open_pool(settings)
        try:
            await churn(PostgresMessageStore(pool), lambda c: postgres_rows_read(pool, c))
        finally:
            await pool.close()
    else:
        await churn(store, lambda c: scylla_history_rows(backend, c))


async def churn(store: MessageStore, history_rows_read: Callable[[str], Awaitable[int]]) -> None:
    channel, base = fresh(), an_hour_ago()
    liked, other = message(channel, base + 1), message(channel, base + 2)
    # Given and taken back: the same emoji again and again, and a new emoji each time; one
    # change a millisecond (Scylla orders a millisecond's first thousand ids).
    toggles = [
        change(
            liked,
            base + ((i + 1) << SEQUENCE_BITS),
            "reaction",
            emoji="👍" if i % 4 < 2 else f"e{i // 2}",
            sender_id="ann",
            removed=i % 2 == 1,
        )
        for i in range(TOGGLES)
    ]
    kept = change(
        liked, base + ((TOGGLES + 1) << SEQUENCE_BITS), "reaction", emoji="🎉", sender_id="bo"
    )
    await store.insert([liked, other])
    for start in range(0, TOGGLES, 250):
        await store.insert(toggles[start : start + 250])
    await store.insert([kept])

    latest = liked.model_copy(update={"reactions": {"🎉": ["bo"]}})
    assert await store.get(channel, liked.message_id) == latest
    assert await store.page(channel, limit=10, changes=False) == [latest, other]
    assert await history_rows_read(channel) <= 2
    # Sync still reads every change, in order, in both directions.
    assert ids(await store.page(channel, after=base, limit=4)) == ids([liked, other, *toggles[:2]])
    assert ids(await store.page(channel, limit=2)) == ids([toggles[-1], kept])
    # Applied again (a retry, a replay over the store), in any order: the same.
    await store.insert([kept, toggles[0], toggles[2]])
    assert await store.get(channel, liked.message_id) == latest


async def postgres_rows_read(pool: Pool, channel_id: str) -> int:
    """The index entries and table rows a history page of the channel read, by the server's
    counters, flushed by the one connection of `pool`, which ran it."""
    counters = (
        "SELECT (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes"
        "        WHERE relname = 'messages')"
        "     + (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables"
        "        WHERE relname = 'messages')"
    )

    async def read_so_far() -> int:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            row = await (await conn.execute(counters)).fetchone()
            assert row is not None
            return int(str(row[0]))

    before = await read_so_far()
    await PostgresMessageStore(pool).page(channel_id, limit=10, changes=False)
    return await read_so_far() - before


async def scylla_history_rows(backend: Backend, channel_id: str) -> int:
    """The rows a history page of the channel can read: history reads the `messages` table
    alone (changes have their own), so its rows of the channel."""
    from storage.scylla import connect_scylla, shutdown_scylla

    session = await connect_scylla([backend.scylla_host], port=backend.scylla_port)
    query = f"SELECT message_id FROM {SCYLLA_KEYSPACE}.messages WHERE channel_id = %s"
    try:
        # Every bucket of the channel (the test's rows are in one or two).
        rows = await asyncio.to_thread(
            lambda: [
                row
                for bucket in {bucket_of(an_hour_ago()) + d for d in (-1, 0, 1)}
                for row in session.execute(query + " AND bucket = %s", (channel_id, bucket))
            ]
        )
    finally:
        await shutdown_scylla(session)
    return len(rows)


async def test_cql_reactions_stored_as_rows_before_are_folded_into_their_messages(
    cql_endpoint: tuple[str, int],
) -> None:
    """A keyspace from before reactions were one value per message: its `reactions` rows (one
    per message, emoji and user, taken back ones included) become each message's reactions,
    and the table goes."""
    from storage.scylla import connect_scylla, migrate_scylla, open_scylla_message_store
    from storage.scylla import shutdown_scylla as shutdown

    host, port = cql_endpoint
    keyspace = f"parley_fold_{uuid.uuid4().hex[:8]}"
    channel, base = fresh(), an_hour_ago()
    liked, deleted = message(channel, base + 1), message(channel, base + 2)
    session = await connect_scylla([host], port=port)
    try:
        await migrate_scylla(session, keyspace)
        store = await open_scylla_message_store([host], keyspace, port=port)
        await store.insert([liked, deleted, change(deleted, base + 3, "delete")])
        await store.close()
        old = (
            f"CREATE TABLE {keyspace}.reactions (channel_id text, bucket int, message_id bigint,"
            " emoji text, user_id text, active boolean,"
            " PRIMARY KEY ((channel_id, bucket), message_id, emoji, user_id))"
        )
        await asyncio.to_thread(session.execute, old)
        rows = [
            (liked, "👍", "ann", True),
            (liked, "👍", "bo", False),  # taken back
            (liked, "🎉", "bo", True),
            (deleted, "👍", "ann", True),
        ]
        for n, (m, emoji, user, active) in enumerate(rows):
            await asyncio.to_thread(
                session.execute,
                f"INSERT INTO {keyspace}.reactions (channel_id, bucket, message_id, emoji,"
                " user_id, active) VALUES (%s, %s, %s, %s, %s, %s) USING TIMESTAMP %s",
                (channel, bucket_of(m.message_id), m.message_id, emoji, user, active, 10**15 + n),
            )

        await migrate_scylla(session, keyspace)
        await migrate_scylla(session, keyspace)  # once folded, there is nothing to fold

        store = await open_scylla_message_store([host], keyspace, port=port)
        try:
            assert (await store.get(channel, liked.message_id)) == liked.model_copy(
                update={"reactions": {"🎉": ["bo"], "👍": ["ann"]}}
            )
            tombstone = await store.get(channel, deleted.message_id)
            assert tombstone is not None and tombstone.reactions is None
        finally:
            await store.close()
        tables = await asyncio.to_thread(
            lambda: [
                r["table_name"]
                for r in session.execute(
                    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                    (keyspace,),
                )
            ]
        )
        assert "reactions" not in tables and "changes" in tables
    finally:
        await asyncio.to_thread(session.execute, f"DROP KEYSPACE IF EXISTS {keyspace}")
        await shutdown(session)


async def test_a_100000_character_multibyte_text_round_trips_exactly(store: MessageStore) -> None:
    channel = fresh()
    text = "é" * 50_000 + "😀" * 50_000
    assert len(text) == 100_000
    sent = message(channel, an_hour_ago(), text=text)
    await store.insert([sent])

    (stored,) = await store.page(channel, limit=1)
    assert stored.text == text
    assert stored == sent
    key = (sent.sender_device_id, sent.client_msg_id)
    assert (await store.find_sent([key]))[key].text == text


# --- errors, classified by the store --------------------------------------------------------


async def test_a_message_the_store_can_never_hold_raises_a_permanent_error(
    store: MessageStore,
) -> None:
    too_big = Message.model_construct(**{**message(fresh(), 1).model_dump(), "message_id": 2**63})
    with pytest.raises(PermanentStoreError):
        await store.insert([too_big])


async def test_a_store_whose_server_does_not_answer_raises_a_retryable_error(
    backend: Backend,
) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(RetryableStoreError):
        if backend.name == "postgres":
            dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1"
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, open=False, timeout=1)
            await pool.open(wait=False)
            try:
                await PostgresMessageStore(pool).page(fresh(), limit=10)
            finally:
                await pool.close()
        else:
            from storage.scylla import open_scylla_message_store

            scylla = await open_scylla_message_store(["127.0.0.1"], SCYLLA_KEYSPACE, port=port)
            await scylla.close()
