"""Search through the whole stack: messages sent on a socket are indexed by the processors'
indexer (from parley.stored.v1) and found by `GET /v1/search`, only by whom may see them; the
index is rebuilt from the topic with the same results."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from parley_client import Login
from parley_client import Message as ClientMessage
from processors.search_rebuild import rebuild_search
from schemas.events import StoredMessageV1
from schemas.export import JSON_DIR
from schemas.http import SearchResults
from schemas.ids import id_floor, iso_ms, new_id, now_ms
from schemas.message import Message
from schemas.settings import Settings
from storage.postgres.migrate import migrate
from storage.postgres.pool import open_pool
from storage.postgres.search import PostgresSearchIndex
from storage.protocols import SearchScope
from storage.stores import Stores
from storage.visibility import visible_from
from tests.conftest import Api, eventually
from tests.stack import Stack
from topics.definitions import stored_topic
from topics.tap import tap


async def search(api: Api, who: Login, **params: str | int) -> dict[str, Any]:
    response = await api.request("GET", "/v1/search", auth=who, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    SearchResults.model_validate(body)  # the shape the OpenAPI document gives
    return body


async def texts(api: Api, who: Login, q: str, **params: str | int) -> list[str]:
    body = await search(api, who, q=q, **params)
    return [r["message"]["text"] for r in body["results"]]


async def newest_first(api: Api, who: Login, channels: list[str], wanted: list[str]) -> list[str]:
    """The stored messages with these texts in search's order: by message id, then channel id,
    newest first. Ids order one channel's messages; two channels' messages sent in the same
    millisecond may share an id, and then the channel id decides."""
    stored: list[ClientMessage] = []

    async def all_stored() -> bool:
        # Accepted is not yet stored: read until every text is.
        stored[:] = [m for channel in channels for m in await api.all_history(who, channel)]
        return set(wanted) <= {m["text"] for m in stored}

    await eventually(all_stored, 30, f"{len(set(wanted))} messages stored")
    ordered = sorted(
        (m for m in stored if m["text"] in wanted),
        key=lambda m: (int(m["message_id"]), m["channel_id"]),
        reverse=True,
    )
    return [m["text"] for m in ordered]


async def until_found(api: Api, who: Login, q: str, expected: list[str]) -> None:
    async def found() -> bool:
        return await texts(api, who, q, limit=100) == expected

    await eventually(found, 30, f"search {q!r} to give {expected}")


async def test_a_message_sent_on_a_socket_is_found_with_its_channel_and_a_snippet(
    api: Api,
) -> None:
    alice, bob = await api.new_device("sa"), await api.new_device("sb")
    group = await api.group(alice, [bob.user_id], name="trip")
    word = f"w{uuid.uuid4().hex[:10]}"
    socket = await api.connect(alice)
    texts_sent = [
        f"{word} 오늘 한국어 공부를 했어요",
        f"{word} 東京タワーに行きました 🎉",
        f"{word} 我爱北京天安门",
        f"Hello {word.upper()}, see you at the party 👍🏽",
    ]
    for text in texts_sent:
        await socket.accepted(await socket.send_message(group, text))
    await until_found(api, bob, word, list(reversed(texts_sent)))

    assert await texts(api, bob, f"{word} 한국") == [texts_sent[0]]  # 2-character Korean word
    assert await texts(api, bob, f"タワー {word}") == [texts_sent[1]]
    assert await texts(api, bob, f"北京 {word}") == [texts_sent[2]]
    assert await texts(api, bob, f"🎉 {word}") == [texts_sent[1]]
    assert await texts(api, bob, f"👍 {word}") == [texts_sent[3]]

    body = await search(api, bob, q=f"party {word}")
    (result,) = body["results"]
    history = await api.history(bob, group)
    assert result["message"] == next(m for m in history if m["text"] == texts_sent[3])
    assert result["channel"] == {"channel_id": group, "type": "group", "name": "trip"}
    assert result["snippet"] == [
        {"text": "Hello ", "match": False},
        {"text": word.upper(), "match": True},
        {"text": ", see you at the ", "match": False},
        {"text": "party", "match": True},
        {"text": " 👍🏽", "match": False},
    ]
    assert body["next_before"] is None


async def test_edits_and_deletes_are_reflected_in_search(api: Api) -> None:
    alice, bob = await api.new_device("se"), await api.new_device("se")
    channel = await api.direct(alice, bob.user_id)
    old, new = f"o{uuid.uuid4().hex[:10]}", f"n{uuid.uuid4().hex[:10]}"
    socket = await api.connect(alice)
    for text in (f"{old} first", f"{old} second"):
        await socket.accepted(await socket.send_message(channel, text))
    first, second = [m["message_id"] for m in await socket.collect_messages(channel, 2)]
    await until_found(api, bob, old, [f"{old} second", f"{old} first"])

    await socket.accepted(await socket.edit(channel, first, f"{new} first, edited"))
    await socket.accepted(await socket.delete(channel, second))
    await until_found(api, bob, new, [f"{new} first, edited"])
    await until_found(api, bob, old, [])  # neither the old text nor the deleted message
    # An edit after the delete (already refused by the gateway) could not bring it back, and
    # a reaction changes nothing.
    await socket.accepted(await socket.react(channel, first, "👍"))
    await socket.until(lambda f: f["type"] == "reaction")
    assert await texts(api, bob, new) == [f"{new} first, edited"]


async def test_only_what_the_caller_could_see_is_found(api: Api) -> None:
    owner, member, late, outsider = [await api.new_device(p) for p in ("so", "sm", "sl", "sx")]
    group = await api.group(owner, [member.user_id], name="private")
    word = f"secret{uuid.uuid4().hex[:8]}"
    socket = await api.connect(owner)
    await socket.accepted(await socket.send_message(group, f"{word} before"))
    await until_found(api, member, word, [f"{word} before"])

    # Joined after the first message: finds it too, as history shows it (a group's past is
    # visible to later members by default; tests/test_visibility.py has the group that hides it).
    await api.add_member(owner, group, late.user_id)
    assert await texts(api, late, word) == [f"{word} before"]
    await socket.accepted(await socket.send_message(group, f"{word} after"))
    await until_found(api, late, word, [f"{word} after", f"{word} before"])
    assert await texts(api, late, word, channel_id=group) == [f"{word} after", f"{word} before"]
    assert await texts(api, member, word) == [f"{word} after", f"{word} before"]

    # Never a member: nothing, and naming the channel is refused.
    assert await texts(api, outsider, word) == []
    refused = await api.request(
        "GET", "/v1/search", auth=outsider, params={"q": word, "channel_id": group}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_member"

    # Left: nothing of the channel any more (leaving is not recorded, only the membership's end).
    await api.remove_member(member, group, member.user_id)
    assert await texts(api, member, word) == []


async def test_results_page_newest_first_with_before(api: Api) -> None:
    alice, bob = await api.new_device("pa"), await api.new_device("pb")
    direct = await api.direct(alice, bob.user_id)
    group = await api.group(alice, [bob.user_id])
    word = f"page{uuid.uuid4().hex[:8]}"
    socket = await api.connect(alice)
    sent = [f"{word} {i}" for i in range(12)]
    for i, text in enumerate(sent):
        await socket.accepted(await socket.send_message(direct if i % 3 else group, text))
    expected = await newest_first(api, bob, [direct, group], sent)
    assert sorted(expected) == sorted(sent)
    await until_found(api, bob, word, expected)

    got: list[str] = []
    params: dict[str, str | int] = {"q": word, "limit": 5}
    while True:
        body = await search(api, bob, **params)
        got += [r["message"]["text"] for r in body["results"]]
        if body["next_before"] is None:
            break
        params["before"] = body["next_before"]
    assert got == expected
    assert await texts(api, bob, word, channel_id=group) == [
        t for i, t in reversed(list(enumerate(sent))) if i % 3 == 0
    ]


async def test_a_text_that_grows_18_times_under_nfkc_is_delivered_whole_and_searched_to_the_bound(
    api: Api,
) -> None:
    """100,000 x U+FDFA is 1.8M characters normalised; search reads the first 100,000 of them
    (MAX_SEARCH_CHARS). Delivery and storage keep the text exactly; a word within the bound
    is found, a word only past it is not (docs/architecture.md (n))."""
    alice, bob = await api.new_device("sn"), await api.new_device("sn")
    channel = await api.direct(alice, bob.user_id)
    huge = "\ufdfa" * 100_000  # each: "صلى الله عليه وسلم", its copies joined without spaces
    late = "\ufdfa" * 99_990 + " zanzibar"  # 9 characters, at normalised 1,799,821
    sender, receiver = await api.connect(alice), await api.connect(bob)
    for text in (huge, late):
        await sender.accepted(await sender.send_message(channel, text))
    delivered = await receiver.collect_messages(channel, 2)
    assert [m["text"] for m in delivered] == [huge, late]
    stored = {m["text"]: m for m in await api.history(bob, channel)}
    assert sorted(stored) == sorted([huge, late])

    await until_found(api, bob, "الله", [late, huge])  # within the bound, in both
    # "وسلم" stands alone only at the end of the last copy: past the bound, not found.
    assert await texts(api, bob, "وسلم") == []
    assert await texts(api, bob, "zanzibar") == []
    body = await search(api, bob, q="الله", channel_id=channel)
    assert [r["message"] for r in body["results"]] == [stored[late], stored[huge]]
    for result in body["results"]:
        snippet = result["snippet"]
        assert {"text": "الله", "match": True} in snippet
        assert snippet[-1] == {"text": "…", "match": False}
        assert sum(len(part["text"]) for part in snippet) <= 162


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 422, "invalid"),
        ({"q": ""}, 422, "invalid"),
        ({"q": "x" * 201}, 422, "invalid"),
        ({"q": "?!. ,"}, 422, "invalid"),
        ({"q": "ok", "limit": "0"}, 422, "invalid"),
        ({"q": "ok", "limit": "101"}, 422, "invalid"),
        ({"q": "ok", "limit": "ten"}, 422, "invalid"),
        ({"q": "ok", "channel_id": "abc"}, 422, "invalid"),
        ({"q": "ok", "channel_id": "99999999999999999999"}, 422, "invalid"),
        ({"q": "ok", "before": "-1"}, 422, "invalid"),
        ({"q": "ok", "channel_id": "123"}, 403, "not_member"),
    ],
)
async def test_bad_searches_get_clear_errors(
    api: Api, params: dict[str, str], status: int, code: str
) -> None:
    device = await api.new_device("sv")
    response = await api.request("GET", "/v1/search", auth=device, params=params)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_search_needs_a_token(api: Api) -> None:
    response = await api.request("GET", "/v1/search", params={"q": "hello"})
    assert response.status_code == 401
    assert (await texts(api, await api.new_device("s2"), "x" * 200)) == []  # 200 is allowed


async def test_the_indexer_skips_event_types_it_does_not_know(stack: Stack, stores: Stores) -> None:
    channel = new_id()
    message = Message(
        channel_id=channel,
        message_id=id_floor(now_ms()),
        sender_id="1",
        sender_device_id="2",
        client_msg_id="3",
        text="after the unknown ones",
        sent_at=iso_ms(now_ms()),
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap)
    await producer.start()
    try:
        topic, key = stored_topic(stack.settings).name, channel.encode()
        # A later event of a message's life, a newer version, and a broken record, then a
        # message: the partition goes on past all three.
        await producer.send_and_wait(topic, b'{"type":"message.reacted","v":1}', key=key)
        await producer.send_and_wait(topic, b'{"type":"message.stored","v":9}', key=key)
        await producer.send_and_wait(topic, b"\xff not json", key=key)
        await producer.send_and_wait(topic, StoredMessageV1(message=message).encode(), key=key)
    finally:
        await producer.stop()

    async def indexed() -> bool:
        page = await stores.search.search(
            "unknown", [SearchScope(channel, 0)], before=None, limit=10
        )
        return page.messages == [message]

    await eventually(indexed, 30, "the message after the unknown events to be indexed")


@pytest.fixture
async def empty_index_settings(stack: Stack) -> AsyncIterator[Settings]:
    """The stack's settings with a new, migrated database of their own (an empty index)."""
    dsn = stack.settings.postgres_dsn
    name = f"rebuild_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}".encode())
    new = dsn.replace("/postgres?", f"/{name}?")
    assert new != dsn
    await migrate(new)
    yield stack.settings.model_copy(update={"postgres_dsn": new})


async def test_a_rebuild_from_the_topic_into_an_emptied_index_gives_the_same_results(
    api: Api, stores: Stores, empty_index_settings: Settings
) -> None:
    alice, bob = await api.new_device("ra"), await api.new_device("rb")
    direct = await api.direct(alice, bob.user_id)
    group = await api.group(alice, [bob.user_id])
    word = f"re{uuid.uuid4().hex[:8]}"
    socket = await api.connect(alice)
    sent = [
        f"{word} {t} {i}" for i, t in enumerate(["한국어", "東京", "北京", "🎉", "mixed 語"] * 6)
    ]
    for i, text in enumerate(sent):
        await socket.accepted(await socket.send_message(direct if i % 2 else group, text))
    await socket.send_message(direct, f"{word} again", client_msg_id="same")
    await socket.accepted(await socket.send_message(direct, f"{word} again", client_msg_id="same"))
    expected = await newest_first(api, bob, [direct, group], [f"{word} again", *sent])
    assert sorted(expected) == sorted([f"{word} again", *sent])  # "again" stored once
    await until_found(api, bob, word, expected)

    # The rebuilt index starts with something that must go.
    pool = await open_pool(empty_index_settings)
    try:
        rebuilt = PostgresSearchIndex(pool)
        stale = Message(
            channel_id=group,
            message_id=1,
            sender_id="1",
            sender_device_id="1",
            client_msg_id="stale",
            text=f"{word} stale",
            sent_at=iso_ms(now_ms()),
        )
        await rebuilt.add([stale])
        read = await rebuild_search(empty_index_settings)
        assert read >= len(sent) + 1

        memberships = await stores.channels.memberships(bob.user_id)
        scopes = [SearchScope(m.channel_id, visible_from(m)) for m in memberships]
        everything = [SearchScope(direct, 0), SearchScope(group, 0)]
        for q in (word, f"{word} 한국", f"{word} 東京", f"{word} 🎉", f"{word} mixed 語", "again"):
            for scope in (scopes, everything):
                live = await stores.search.search(q, scope, before=None, limit=100)
                again = await rebuilt.search(q, scope, before=None, limit=100)
                assert again == live, q
        assert len((await rebuilt.search(word, everything, before=None, limit=100)).messages) == 31
    finally:
        await pool.close()


async def test_stored_events_validate_against_their_schema_in_channel_order(
    api: Api, stack: Stack
) -> None:
    alice, bob = await api.new_device("ea"), await api.new_device("eb")
    channel = await api.direct(alice, bob.user_id)
    socket = await api.connect(alice)
    sent = [f"stored {i} 🎉" for i in range(5)]
    for text in sent:
        await socket.send_message(channel, text)
    await socket.collect_messages(channel, len(sent))
    schema = orjson.loads((JSON_DIR / "message.stored.v1.json").read_bytes())

    async def published() -> list[dict[str, Any]]:
        lines: list[bytes] = []
        topic = stored_topic(stack.settings).name
        await asyncio.wait_for(
            tap(stack.settings, topic, lines.append, from_beginning=True, follow=False), 60
        )
        events = [orjson.loads(line) for line in lines]
        return [e for e in events if e.get("message", {}).get("channel_id") == channel]

    async def all_out() -> bool:
        return len({e["message"]["message_id"] for e in await published()}) == len(sent)

    await eventually(all_out, 30, "the stored events")
    events = await published()
    for event in events:
        del event["_partition"], event["_offset"]
        jsonschema.validate(event, schema)
    assert [e["message"]["text"] for e in events] == sent
    assert [e["message"] for e in events] == await api.history(bob, channel)


def test_a_stored_record_is_the_event_byte_for_byte() -> None:
    message = Message(
        channel_id="42",
        message_id=7_000_000_000_001,
        sender_id="1",
        sender_device_id="2",
        client_msg_id='q"uote\\',
        text='émoji 🎉, "quotes", \\ back\nslash \u2028',
        sent_at="2026-11-26T00:00:00.000Z",
    )
    raw = StoredMessageV1.encode_message(message.encode())
    assert raw == StoredMessageV1(message=message).encode()
    assert StoredMessageV1.model_validate_json(raw).message == message
