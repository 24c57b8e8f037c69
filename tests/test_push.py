"""Push notifications (SPEC §4, issue: offline push): a user with no open socket gets one signed
push per conversation burst through the webhook provider, a connected user gets none, a
failing relay is retried under one push id, and the claim store never pushes a message twice.
The relay is a real local HTTP server (tests/push_receiver.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import pytest

from parley_client import ApiError, Login
from processors.notifier import Notifier, NotifierConfig
from processors.push_providers import LogProvider, open_provider
from schemas.events import InboxMessageV1
from schemas.ids import id_floor, iso_ms, now_ms
from schemas.message import Message
from schemas.push import PushNotificationV1
from schemas.settings import Settings
from storage.protocols import PushCandidate, PushEndpoint
from storage.stores import Stores
from tests.conftest import PUSH_SECRET, Api, push_marker, wait_connected
from tests.push_receiver import PushReceiver, Received


async def register(api: Api, device: Login, token: str | None = None) -> None:
    token = token or f"token-{device.device_id}"
    assert await api.register_push(device, "apns", token) == {
        "device_id": device.device_id,
        "platform": "apns",
        "token": token,
    }


def assert_signed(request: Received) -> None:
    fields = dict(p.split("=", 1) for p in request.headers["Parley-Signature"].split(","))
    expected = hmac.new(
        PUSH_SECRET.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - time.time()) < 120
    assert request.headers["Idempotency-Key"] == request.push["push_id"]


async def test_each_device_has_one_push_endpoint_listed_to_the_user_and_forgotten_at_logout(
    api: Api,
) -> None:
    phone = await api.new_device("push")
    laptop = await api.add_device(phone.username, "laptop")
    answer = await api.register_push(phone, "fcm", "abc")
    assert answer == {"device_id": phone.device_id, "platform": "fcm", "token": "abc"}
    await api.register_push(phone, "apns", "xyz")
    await api.register_push(laptop, "webpush", "w")
    listed = await api.push_endpoints(laptop)
    assert sorted((e["device_id"], e["platform"], e["token"]) for e in listed) == sorted(
        [(phone.device_id, "apns", "xyz"), (laptop.device_id, "webpush", "w")]
    )
    url = "/v1/push/endpoints/current"
    platform, token = "platform must be 1-32 of [a-z0-9_.-]", "token must be a string of 1-4096"
    for bad, message in (
        ({"platform": "APNS!", "token": "t"}, platform),
        ({"platform": "", "token": "t"}, platform),
        ({"token": "t"}, platform),
        ({"platform": "apns", "token": ""}, token),
        ({"platform": "apns", "token": "t" * 4097}, token),
        ({"platform": "apns"}, token),
        ({"token": 5, "platform": "apns"}, token),
        ({"platform": "apns", "token": "t\n"}, "token must not contain control characters"),
    ):
        refused = await api.request("PUT", url, json=bad, auth=phone)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid", bad
        assert refused.json()["error"]["message"].startswith(message), bad
    assert (
        await api.request("PUT", url, json={"platform": "apns", "token": "t"})
    ).status_code == 401
    assert (await api.request("GET", "/v1/push/endpoints")).status_code == 401
    await api.unregister_push(laptop)
    await api.unregister_push(laptop)  # none left: still fine
    # Logging out forgets the device's endpoint.
    await api.log_out(phone)
    other = await api.add_device(phone.username)
    assert await api.push_endpoints(other) == []
    with pytest.raises(ApiError) as gone:
        await api.push_endpoints(phone)
    assert gone.value.status == 401


async def test_an_offline_user_gets_one_signed_push_per_burst(
    api: Api, push_receiver: PushReceiver, stores: Stores
) -> None:
    sender, away = await api.new_device("sender"), await api.new_device("away")
    await register(api, sender)
    await register(api, away, "away-token")
    channel = await api.direct(sender, away.user_id)
    socket = await api.connect(sender)
    texts = [f"burst {i}" for i in range(5)]
    for text in texts:
        await socket.send_message(channel, text)
    delivered = await socket.collect_messages(channel, 5)
    [push] = await push_receiver.wait_accepted(away.user_id, 1)
    marker = await push_marker(api, push_receiver, sender, [away])
    # The rest of the burst was coalesced into the first push, not pushed late.
    assert [p for p in push_receiver.accepted(away.user_id) if p["channel_id"] != marker] == [push]
    first = delivered[0]
    assert push == {
        "type": "push.notification",
        "v": 1,
        "push_id": f"{away.user_id}.{channel}.{first['message_id']}",
        "user_id": away.user_id,
        "targets": [{"device_id": away.device_id, "platform": "apns", "token": "away-token"}],
        "channel_id": channel,
        "message_id": first["message_id"],
        "sender_id": sender.user_id,
        "preview": "burst 0",
        "sent_at": first["sent_at"],
    }
    assert_signed(push_receiver.of_user(away.user_id)[0])
    assert push_receiver.of_user(sender.user_id) == []  # nobody is pushed their own message

    # Once the user has been active again, the next message starts a new burst.
    back = await api.connect(away)
    await wait_connected(stores, away.user_id, True)
    await back.close()
    await wait_connected(stores, away.user_id, False)
    await socket.send_message(channel, "are you there?")
    pushes = await push_receiver.wait_accepted(away.user_id, 3)
    assert [p["preview"] for p in pushes if p["channel_id"] == channel] == [
        "burst 0",
        "are you there?",
    ]


async def test_no_push_while_a_socket_is_open_and_one_as_soon_as_it_closes(
    api: Api, push_receiver: PushReceiver, stores: Stores
) -> None:
    sender, here, away = [await api.new_device("g") for _ in range(3)]
    for device in (sender, here, away):
        await register(api, device)
    channel = await api.group(sender, [here.user_id, away.user_id])
    socket = await api.connect(sender)
    here_socket = await api.connect(here)
    await wait_connected(stores, here.user_id, True)
    await socket.send_message(channel, "one")
    await here_socket.collect_messages(channel, 1)
    [to_away] = await push_receiver.wait_accepted(away.user_id, 1)
    assert to_away["preview"] == "one"

    # The socket closes: no heartbeat timeout to wait out (presence stays online for it).
    await here_socket.close()
    await wait_connected(stores, here.user_id, False)
    await socket.send_message(channel, "two")
    [to_here] = await push_receiver.wait_accepted(here.user_id, 1)
    assert to_here["preview"] == "two"
    await push_marker(api, push_receiver, sender, [here, away])
    # "one" made no push for the user it reached; "two" is in away's burst.
    assert [p["preview"] for p in push_receiver.accepted(here.user_id)] == ["two", "marker"]
    assert [p["preview"] for p in push_receiver.accepted(away.user_id)] == ["one", "marker"]
    assert push_receiver.of_user(sender.user_id) == []


async def test_a_failing_relay_is_retried_under_one_push_id(
    api: Api, push_receiver: PushReceiver
) -> None:
    sender, away = await api.new_device(), await api.new_device()
    await register(api, away)
    push_receiver.fail_first(away.user_id, 2)
    channel = await api.direct(sender, away.user_id)
    socket = await api.connect(sender)
    await socket.send_message(channel, "retry me")
    [push] = await push_receiver.wait_accepted(away.user_id, 1)
    attempts = push_receiver.of_user(away.user_id)
    assert [r.status for r in attempts] == [503, 503, 200]
    assert {r.push["push_id"] for r in attempts} == {push["push_id"]}
    assert {r.headers["Idempotency-Key"] for r in attempts} == {push["push_id"]}
    for attempt in attempts:
        assert_signed(attempt)


async def test_claims_give_each_message_one_push_and_coalesce_bursts(stores: Stores) -> None:
    push = stores.push
    user, channel = f"u{now_ms()}", f"c{now_ms()}"
    t0 = now_ms()

    def at(offset_ms: int, seq: int = 0) -> PushCandidate:
        return PushCandidate(user, channel, id_floor(t0 + offset_ms) + seq, active_floor=0)

    window = 60_000
    first = at(0)
    # In one call, only the earliest message of a (user, channel) is considered.
    assert await push.claim([at(5), first, at(1)], window) == [first]
    await push.finish([first])
    assert await push.claim([first], window) == []  # replayed: already claimed and sent
    assert await push.claim([at(10)], window) == []  # same burst
    assert await push.claim([at(-10)], window) == []  # older than the claim
    late = at(window + 1)
    assert await push.claim([late], window) == [late]  # the window passed: a new burst
    # The user was active after the last claim: the next message starts a new burst.
    again = PushCandidate(user, channel, id_floor(t0 + window + 50), id_floor(t0 + window + 20))
    assert await push.claim([again], window) == [again]
    # Until its push is done, a claim is handed out again (the same push is resent after a
    # crash), and never again after.
    assert await push.claim([again], window) == [again]
    await push.finish([again])
    assert await push.claim([again], window) == []
    # Racing claims of one message: one row, claimed for that message, done once finished.
    raced = at(3 * window)
    results = await asyncio.gather(*(push.claim([raced], window) for _ in range(8)))
    assert {c for r in results for c in r} == {raced}
    await push.finish([raced])
    assert await push.claim([raced, at(3 * window + 1)], window) == []


async def test_endpoints_of_revoked_devices_are_never_used(api: Api, stores: Stores) -> None:
    device = await api.new_device()
    await stores.push.set_endpoint(PushEndpoint(device.user_id, device.device_id, "fcm", "t"))
    assert list(await stores.push.endpoints([device.user_id])) == [device.user_id]
    await stores.accounts.revoke_device(device.device_id)
    assert await stores.push.endpoints([device.user_id]) == {}


async def test_the_log_provider_writes_each_push_as_one_json_line(settings: Settings) -> None:
    push = PushNotificationV1(
        push_id="u.c.1",
        user_id="u",
        targets=[],
        channel_id="c",
        message_id="1",
        sender_id="s",
        preview="hi",
        sent_at="2026-01-01T00:00:00.000Z",
    )
    provider = LogProvider()  # writes whatever the level and handlers of the root logger
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.WARNING)
    written: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: written.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("parley.push.log").addHandler(handler)
    try:
        assert await provider.send(push)
    finally:
        logging.getLogger("parley.push.log").removeHandler(handler)
        logging.getLogger().setLevel(root_level)
    assert written == [f"push {push.encode().decode()}"]
    assert isinstance(open_provider(settings), LogProvider)
    with pytest.raises(ValueError, match="PARLEY_PUSH_WEBHOOK_URL"):
        open_provider(settings.model_copy(update={"push_provider": "webhook"}))


async def test_edits_deletes_and_reactions_never_push(
    api: Api, push_receiver: PushReceiver, stores: Stores
) -> None:
    sender, away = await api.new_device("sender"), await api.new_device("away")
    await register(api, sender)
    await register(api, away, "away-token")
    channel = await api.direct(sender, away.user_id)
    socket = await api.connect(sender)
    await socket.accepted(await socket.send_message(channel, "before"))
    (message,) = await socket.collect_messages(channel, 1)
    [push] = await push_receiver.wait_accepted(away.user_id, 1)
    # Active again and gone: a new message now would push again; changes must not.
    back = await api.connect(away)
    await wait_connected(stores, away.user_id, True)
    await back.close()
    await wait_connected(stores, away.user_id, False)
    target = message["message_id"]
    for cmid in (
        await socket.edit(channel, target, "after"),
        await socket.react(channel, target, "👍"),
        await socket.delete(channel, target),
    ):
        await socket.accepted(cmid)
    await socket.until(lambda f: f["type"] == "delete")
    marker = await push_marker(api, push_receiver, sender, [away])
    assert [p for p in push_receiver.accepted(away.user_id) if p["channel_id"] != marker] == [push]


class Recorded:
    """A push provider that keeps what it is given (the notifier's output, for this test)."""

    def __init__(self) -> None:
        self.pushes: list[PushNotificationV1] = []

    async def send(self, push: PushNotificationV1) -> bool:
        self.pushes.append(push)
        return True

    async def close(self) -> None:
        pass


async def test_no_push_for_a_message_already_read_on_another_device(
    api: Api, stores: Stores
) -> None:
    """The notifier, on the real stores, given inbox records as the topic holds them: the
    first message was read (the user's marker is at it) before its record came; the second
    was not, and is what the push is about."""
    sender, away = await api.new_device("sender"), await api.new_device("away")
    await register(api, away, "away-token")
    channel = await api.direct(sender, away.user_id)
    base = id_floor(now_ms())
    read, unread = (
        Message(
            channel_id=channel,
            message_id=base + n,
            sender_id=sender.user_id,
            sender_device_id=sender.device_id,
            client_msg_id=f"read-test-{n}",
            text=text,
            sent_at=iso_ms(now_ms()),
        )
        for n, text in ((1, "already read"), (2, "not read yet"))
    )
    await stores.reads.advance(away.user_id, channel, read.message_id)
    provider = Recorded()
    config = NotifierConfig(coalesce_ms=60_000, max_age_ms=60_000, preview_chars=50, concurrency=2)
    notifier = Notifier(
        stores.push, stores.presence, stores.reads, stores.channels, provider, config
    )
    records = [
        InboxMessageV1(recipients=[away.user_id], message=m).encode() for m in (read, unread)
    ]
    await notifier.handle(records)
    assert [(p.user_id, p.message_id, p.preview) for p in provider.pushes] == [
        (away.user_id, str(unread.message_id), "not read yet")
    ]
