"""Mentions and notification settings (SPEC: issue #23 item 5): `@username` resolved in the
channel's order into the message's `mentions`, unread mentions in the channel list, and each
member's notification level per channel, synced to their devices and respected by pushes."""

from __future__ import annotations

from typing import Any

from parley_client import Login
from schemas.limits import MAX_MENTIONS
from schemas.mentions import mentioned_names, resolve
from tests.conftest import Api, extra_gateway, push_marker, sent
from tests.push_receiver import PushReceiver
from tests.stack import Stack


def test_names_are_read_as_the_server_reads_them_and_capped() -> None:
    assert mentioned_names("no at sign") == []
    assert mentioned_names("mail me@bob.org, or @ab, or @@bob") == []
    assert mentioned_names("@Bob. and (@carol) and @bob again") == [
        ("bob.", "bob"),
        ("carol",),
        ("bob",),
    ]
    many = " ".join(f"@user{i:03}" for i in range(MAX_MENTIONS + 10))
    names = mentioned_names(many)
    assert len(names) == MAX_MENTIONS and names[0] == ("user000",)
    users = {f"user{i:03}": f"id{i}" for i in range(MAX_MENTIONS + 10)} | {"bob": "b", "bob.": "d"}
    members = set(users.values())
    assert len(resolve(mentioned_names(many), users, members, "x")) == MAX_MENTIONS
    # The whole name first ("bob." is a user here), then without its final dot; the sender and
    # non-members are nobody.
    assert resolve([("bob.", "bob")], users, members, "x") == ["d"]
    assert resolve([("bob.", "bob")], {"bob": "b"}, members, "x") == ["b"]
    assert resolve([("bob",)], users, members, "b") == []
    assert resolve([("bob",)], users, {"d"}, "x") == []


async def listed(api: Api, device: Any, channel_id: str) -> dict[str, Any]:
    (found,) = [c for c in await api.channels(device) if c["channel_id"] == channel_id]
    return dict(found)


async def test_a_mention_names_members_only_and_none_across_a_block(api: Api) -> None:
    alice, bob, carol, blocker, gone, outsider = [await api.new_device("mn") for _ in range(6)]
    group = await api.group(
        alice, [bob.user_id, carol.user_id, blocker.user_id, gone.user_id], name="mentions"
    )
    await api.block(blocker, alice.user_id)
    await api.remove_member(alice, group, gone.user_id)
    a, b = await api.connect(alice), await api.connect(bob)
    text = (
        f"hi @{bob.username.upper()}, @{carol.username}. and @{blocker.username}"
        f" @{gone.username} @{outsider.username} @{alice.username} @nobody-at-all"
        f" me@{bob.username} @{bob.username} again"
    )
    await sent(a, group, ["no one here", text])
    plain, mentioning = await b.collect_messages(group, 2)
    assert "mentions" not in plain
    # Case-folded, in order, each once; the sentence's final "." is not part of the name. A
    # removed member, a non-member, one across a block, the sender, an address: nobody.
    assert mentioning["mentions"] == [bob.user_id, carol.user_id]
    history = await api.history(bob, group)
    assert [m.get("mentions") for m in history] == [None, [bob.user_id, carol.user_id]]


async def test_unread_mentions_are_counted_beside_unread_messages(api: Api) -> None:
    alice, bob = await api.new_device("mc"), await api.new_device("mc")
    group = await api.group(alice, [bob.user_id], name="counts")
    a = await api.connect(alice)
    ids = await sent(a, group, [f"@{bob.username} one", "two", f"three @{bob.username}"])
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (3, 2)
    assert (await listed(api, alice, group))["mention_count"] == 0
    b = await api.connect(bob)
    await b.read(group, ids[0])
    await b.until(lambda f: f["type"] == "read" and f["message_id"] == ids[0])
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (2, 1)
    await a.accepted(await a.delete(group, ids[2]))  # a deleted message mentions nobody
    await b.until(lambda f: f["type"] == "delete")
    found = await listed(api, bob, group)
    assert (found["unread_count"], found["mention_count"]) == (1, 0)


async def test_a_notification_level_set_on_one_device_reaches_the_others_and_the_list(
    api: Api,
) -> None:
    owner = await api.new_device("nl")
    phone = await api.new_device("nl")
    laptop = await api.add_device(phone.username)
    group = await api.group(owner, [phone.user_id], name="levels")
    assert (await listed(api, phone, group))["notifications"] == {
        "level": "all",
        "muted_until": None,
        "version": 0,
    }
    p, lap = await api.connect(phone), await api.connect(laptop)
    answer = await api.set_notifications(phone, group, "mentions", "2030-01-02T03:04:05+02:00")
    expected = {
        "channel_id": group,
        "level": "mentions",
        "muted_until": "2030-01-02T01:04:05.000Z",
        "version": 1,
    }
    assert answer == expected
    for socket in (lap, p):  # every device of the user, the one that set it too
        frame = await socket.until(lambda f: f["type"] == "notifications")
        assert frame == {"type": "notifications", **expected}
    assert (await listed(api, laptop, group))["notifications"] == {
        "level": "mentions",
        "muted_until": "2030-01-02T01:04:05.000Z",
        "version": 1,
    }
    assert (await listed(api, owner, group))["notifications"]["level"] == "all"  # per member
    await api.set_notifications(laptop, group, "all", None)
    frame = await p.until(lambda f: f["type"] == "notifications" and f["level"] == "all")
    assert (frame["muted_until"], frame["version"]) == (None, 2)  # each change counts


async def test_notification_settings_are_for_members_and_well_formed_only(api: Api) -> None:
    owner, member, outsider = [await api.new_device("na") for _ in range(3)]
    group = await api.group(owner, [member.user_id], name="auth")
    url = f"/v1/channels/{group}/notifications"
    for device in (outsider, member):
        if device is member:  # a removed member has no settings there any more
            await api.remove_member(owner, group, member.user_id)
        refused = await api.request("PUT", url, auth=device, json={"level": "none"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "not_member"
    for bad, words in (
        ({}, "the body must be"),
        ({"level": "loud"}, "the body must be"),
        ({"level": "all", "extra": 1}, "the body must be"),
        ({"level": "all", "muted_until": 5}, "the body must be"),
        ({"level": "all", "muted_until": "tomorrow"}, "muted_until must be an ISO 8601"),
        ({"level": "all", "muted_until": "2030-01-01T00:00:00"}, "muted_until must say"),
        ({"level": "all", "muted_until": "9999-01-01T00:00:00Z"}, "muted_until must be within"),
    ):
        refused = await api.request("PUT", url, auth=owner, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["message"].startswith(words), (bad, refused.text)
    unknown = await api.request(
        "PUT", "/v1/channels/123/notifications", auth=owner, json={"level": "all"}
    )
    assert unknown.status_code == 403
    assert (await api.request("PUT", url, json={"level": "all"})).status_code == 401


async def test_a_muted_friend_is_pushed_a_mention_and_nothing_else(
    api: Api, push_receiver: PushReceiver
) -> None:
    alice, muted, loud, silent = [await api.new_device("np") for _ in range(4)]
    for device in (alice, muted, loud, silent):
        await api.register_push(device, "apns", f"token-{device.device_id}")
    group = await api.group(alice, [muted.user_id, loud.user_id, silent.user_id], name="push")
    await api.set_notifications(muted, group, "all", "2099-01-01T00:00:00Z")
    await api.set_notifications(silent, group, "none")
    a = await api.connect(alice)
    plain, mention = await sent(
        a, group, ["nothing for the muted", f"@{muted.username} @{silent.username} look"]
    )
    await push_marker(api, push_receiver, alice, [muted, loud, silent])

    def pushed(user: Login) -> list[str]:
        return [
            p["message_id"]
            for p in push_receiver.accepted(user.user_id)
            if p["channel_id"] == group
        ]

    assert pushed(muted) == [mention]  # muted: the mention only
    assert pushed(loud) == [plain]  # the burst's first push (the mention is coalesced in it)
    assert pushed(silent) == []  # none: not even a mention


async def test_notification_changes_take_from_the_send_bucket(api: Api, stack: Stack) -> None:
    owner, member = await api.new_device("nr"), await api.new_device("nr")
    group = await api.group(owner, [member.user_id], name="rate")
    # A burst of 2 and almost no refill: the third change at once is refused.
    url = f"/v1/channels/{group}/notifications"
    async with extra_gateway(stack, PARLEY_SEND_RATE_PER_S="0.01", PARLEY_SEND_BURST="2") as gw:
        there = Api(gw.url)
        answers = [
            await there.request("PUT", url, auth=member, json={"level": level})
            for level in ("none", "mentions", "all")
        ]
        await there.aclose()
    assert [a.status_code for a in answers] == [200, 200, 429], [a.text for a in answers]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert (await listed(api, member, group))["notifications"]["level"] == "mentions"
