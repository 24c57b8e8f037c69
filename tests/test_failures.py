"""Bad input and failing parts: clear errors, never a crash, a hang or a half-written state."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devstack.embedded.postgres import EmbeddedPostgres
from parley_client import ApiError, CloseCode
from schemas.events import MessageSendV1
from schemas.ids import now_ms
from schemas.settings import Settings
from tests.conftest import MARK, Api, before_mark, handled, marked
from tests.stack import Stack
from topics.definitions import dead_letter_topic, messages_topic


async def test_a_send_the_broker_refuses_gets_internal_with_ref_and_the_socket_stays_open(
    api: Api, stack: Stack
) -> None:
    # This gateway's producer refuses records over 4 KiB: the broker path fails for big texts.
    gateway = await asyncio.to_thread(stack.start_gateway, PARLEY_KAFKA_MAX_REQUEST_BYTES="4096")
    try:
        a, b = await api.new_device(), await api.new_device()
        channel = await api.direct(a, b.user_id)
        socket = await api.connect(a, url=gateway.ws_url)
        await socket.send_message(channel, "x" * 10_000, client_msg_id="big-one")
        frame = await socket.until(lambda f: f["type"] == "error")
        assert frame["code"] == "internal" and frame["ref"] == "big-one"
        await socket.accepted(
            await socket.send_message(channel, "small", client_msg_id="small-one")
        )
        await socket.collect_messages(channel, 1)
        assert [m["client_msg_id"] for m in await api.history(a, channel)] == ["small-one"]
    finally:
        await asyncio.to_thread(gateway.stop)


async def test_a_socket_silent_for_three_heartbeat_intervals_is_closed_and_one_beating_is_not(
    api: Api, stack: Stack
) -> None:
    gateway = await asyncio.to_thread(stack.start_gateway, PARLEY_HEARTBEAT_INTERVAL_S="1")
    try:
        device = await api.new_device()
        # The beating socket first: when the silent one is closed, the beating one has been
        # open longer than three intervals.
        beating = await api.connect(device, url=gateway.ws_url)
        async with beating.heartbeating(0.5):
            silent = await api.connect(device, url=gateway.ws_url)
            frame = await silent.next(15)
            assert (frame["code"], frame["message"]) == ("invalid", "no heartbeat: reconnect")
            assert await silent.wait_closed() == CloseCode.IDLE
            await handled(beating)  # still open, and served
        assert beating.is_open
    finally:
        await asyncio.to_thread(gateway.stop)


async def test_out_of_range_ids_and_nul_text_are_invalid(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    await socket.ack(channel, "9999999999999999999")
    assert (await socket.next())["code"] == "invalid"
    await socket.send_message(channel, "nul \x00 inside", client_msg_id="nul")
    frame = await socket.next()
    assert frame["code"] == "invalid" and frame["ref"] == "nul"
    await socket.send_message(channel, "fine")
    await socket.collect_messages(channel, 1)
    assert [m["text"] for m in await api.history(a, channel)] == ["fine"]


async def test_group_with_an_unknown_member_is_404_and_nothing_is_created(api: Api) -> None:
    a, b = await api.new_device(), await api.new_device()
    with pytest.raises(ApiError) as refused:
        await api.create_group(a, "ghosts", [b.user_id, "123456"])
    assert (refused.value.status, refused.value.code) == (404, "not_found")
    assert await api.channels(a) == []


async def test_events_that_can_never_be_stored_are_dead_lettered_and_do_not_block_the_channel(
    api: Api, settings: Settings
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    reader = await api.connect(b)
    poison = MessageSendV1(
        channel_id=channel,
        sender_id=a.user_id,
        sender_device_id=a.device_id,
        client_msg_id=f"poison-{uuid.uuid4().hex}",
        text="the store cannot hold \x00",
        sent_at_ms=now_ms(),
    ).encode()
    future = orjson.dumps({"type": "message.send", "v": 99, "channel_id": channel})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        topic = messages_topic(settings).name
        for raw in (b"not json at all", future, poison):
            await producer.send_and_wait(topic, raw, key=channel.encode())
    finally:
        await producer.stop()
    writer = await api.connect(a)
    await writer.send_message(channel, "after the poison")
    await marked(writer, channel, reader)  # a late duplicate would come before the mark
    assert [m["text"] for m in before_mark(reader, channel)] == ["after the poison"]
    assert [m["text"] for m in await api.history(a, channel)] == ["after the poison", MARK]

    dead: list[bytes] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(dead_letter_topic(settings).name, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                dead += [r.value for r in records]
    finally:
        await consumer.stop()
    assert {b"not json at all", future, poison} <= set(dead)
    assert before_mark(reader, channel)[0]["channel_id"] == channel


async def test_a_database_restart_under_load_loses_no_send_and_doubles_none(
    api: Api, postgres_server: EmbeddedPostgres
) -> None:
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    sender, reader = await api.connect(a), await api.connect(b)
    sent: list[str] = []

    async def send(cmid: str) -> None:
        await sender.send_message(channel, f"text of {cmid}", client_msg_id=cmid)

    async def send_next() -> None:
        sent.append(f"pg-{len(sent)}")
        await send(sent[-1])
        await asyncio.sleep(0.01)  # pacing: a stream of sends, not one burst

    # Sends flow before, during and after the restart: it begins once the pipeline has
    # stored and delivered some, and the stream goes on until it is over, and a little more.
    while len(sent) < 100:
        await send_next()
    await reader.collect_messages(channel, 25)
    restarting = asyncio.create_task(asyncio.to_thread(postgres_server.restart))
    while not restarting.done():
        await send_next()
    await restarting
    for _ in range(20):
        await send_next()

    # A client retries what was answered `internal`, with the same client_msg_id (sends
    # waited for the pool to reconnect, or were refused and are retried: `retried` counts).
    pending = set(sent)
    retried = 0
    deadline = asyncio.get_running_loop().time() + 90
    while pending:
        assert asyncio.get_running_loop().time() < deadline, (
            f"never accepted: {sorted(pending)[:5]}"
        )
        frame = await sender.next(30)
        if frame["type"] == "accepted":
            pending.discard(frame["client_msg_id"])
        elif frame["type"] == "error":
            assert frame["code"] == "internal", frame
            retried += 1
            await asyncio.sleep(0.2)  # a client's back-off before it resends
            await send(frame["ref"])

    await reader.collect_messages(channel, len(sent), timeout_s=90)
    await marked(sender, channel, reader)  # a late duplicate would come before the mark
    got = before_mark(reader, channel)
    assert sorted(m["client_msg_id"] for m in got) == sorted(sent), retried
    ids = [int(m["message_id"]) for m in got]
    assert ids == sorted(set(ids))
    history = await api.all_history(b, channel)
    assert [m["message_id"] for m in history[:-1]] == [m["message_id"] for m in got]


async def test_a_gateway_idle_through_a_database_restart_answers_its_next_calls_at_once(
    stack: Stack, postgres_server: EmbeddedPostgres
) -> None:
    # A full pool of idle connections, all broken by the restart: met one by one, each would
    # cost a growing back-off (1, 2, 4, 8, 16 s …) and the first call would time out (500).
    gateway = await asyncio.to_thread(
        stack.start_gateway, PARLEY_POSTGRES_POOL_MIN="16", PARLEY_POSTGRES_POOL_MAX="16"
    )
    try:
        async with Api(gateway.url, gateway.ws_url) as api:
            before = await api.new_device()
            await asyncio.to_thread(postgres_server.restart)
            after = await api.new_device()  # raises ApiError unless sign-up and login succeed
            channel = await api.direct(after, before.user_id)
            assert await api.history(before, channel) == []
    finally:
        await asyncio.to_thread(gateway.stop)
