"""Export of a user's data: every line of it, exactly, streamed a page of messages at a time,
with nothing secret and no deleted text in it; one export at a time per user, a few an hour."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from parley_client import ApiError, Login
from tests.conftest import PASSWORD, Api, eventually, extra_gateway, sent
from tests.stack import Stack


async def exported(api: Api, device: Login) -> list[dict[str, Any]]:
    return [line async for line in api.export(device)]


async def test_an_export_holds_the_account_its_channels_and_every_message_it_sent(
    stack: Stack,
) -> None:
    # A small page, so the messages of a channel come in several reads of the store.
    async with (
        extra_gateway(stack, PARLEY_EXPORT_PAGE_SIZE="7") as gateway,
        Api(gateway.url) as api,
    ):
        me = await api.new_device("ex")
        phone = await api.add_device(me.username, "phone")
        friend, other, blocked = [await api.new_device("ex") for _ in range(3)]
        await api.make_friends(me, friend)
        await api.block(me, blocked.user_id)
        await api.share_receipts(me, False)
        await api.set_display_name(me, "Me Myself")
        await api.register_push(phone, "fcm", "secret-push-handle")
        group = await api.create_group(me, "Export club", [friend.user_id, other.user_id])
        direct = await api.open_direct(me, friend.user_id)

        mine, theirs = await api.connect(me), await api.connect(friend)
        in_group = await sent(mine, group["channel_id"], [f"group {i}" for i in range(20)])
        await sent(theirs, group["channel_id"], ["not mine"])
        in_direct = await sent(mine, direct["channel_id"], [f"direct {i}" for i in range(9)])
        await sent(theirs, direct["channel_id"], ["not mine either"])
        await mine.collect_messages(direct["channel_id"], len(in_direct) + 1)
        secret = (await sent(mine, direct["channel_id"], ["my secret"]))[0]
        in_direct.append(secret)
        await mine.accepted(await mine.edit(group["channel_id"], in_group[3], "edited"))
        await mine.accepted(await mine.delete(direct["channel_id"], secret))
        await mine.until(lambda f: f["type"] == "delete" and f["target_id"] == secret)
        await mine.read(group["channel_id"], in_group[5])
        await mine.until(lambda f: f["type"] == "read" and f["message_id"] == in_group[5])

        response = await api.request("GET", "/v1/users/me/export", auth=me)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="parley-export-{me.user_id}.ndjson"'
        )
        raw = response.content
        for secret_text in (b"my secret", b"secret-push-handle", PASSWORD.encode(), b"argon2"):
            assert secret_text not in raw
        lines = [orjson.loads(line) for line in raw.splitlines()]
        assert raw.endswith(b"\n") and len(lines) == raw.count(b"\n")

        header, account, settings, *rest = lines
        assert header["type"] == "export" and header["v"] == 1
        assert account == {
            "type": "account",
            "user_id": me.user_id,
            "username": me.username,
            "display_name": "Me Myself",
        }
        assert settings == {"type": "settings", "read_receipts": False, "group_adds": "everyone"}
        devices = [line for line in rest if line["type"] == "device"]
        assert [(d["device_id"], d["name"]) for d in devices] == [
            (me.device_id, None),
            (phone.device_id, "phone"),
        ]
        assert all(
            set(d) == {"type", "device_id", "name", "created_at", "expires_at"} for d in devices
        )
        assert [line for line in rest if line["type"] == "push_endpoint"] == [
            {"type": "push_endpoint", "device_id": phone.device_id, "platform": "fcm"}
        ]
        assert [line for line in rest if line["type"] == "friend"] == [
            {
                "type": "friend",
                "user_id": friend.user_id,
                "username": friend.username,
                "display_name": None,
                "status": "friend",
            }
        ]
        assert [line for line in rest if line["type"] == "block"] == [
            {"type": "block", "user_id": blocked.user_id}
        ]
        channels = [line for line in rest if line["type"] == "channel"]
        assert [c["channel_id"] for c in channels] == sorted(
            [group["channel_id"], direct["channel_id"]]
        )
        by_id = {c["channel_id"]: c for c in channels}
        assert by_id[group["channel_id"]]["name"] == "Export club"
        assert by_id[group["channel_id"]]["channel_type"] == "group"
        assert by_id[direct["channel_id"]]["channel_type"] == "direct"
        assert by_id[group["channel_id"]]["roles"] == {me.user_id: "owner"}
        assert by_id[group["channel_id"]]["read_message_id"] == in_group[5]
        assert by_id[direct["channel_id"]]["read_message_id"] is None
        assert sorted(by_id[direct["channel_id"]]["members"]) == sorted(
            [me.user_id, friend.user_id]
        )

        # Then the messages the user sent, channel by channel, oldest first; not others'.
        messages = [line for line in rest if line["type"] == "message"]
        expected = {group["channel_id"]: in_group, direct["channel_id"]: in_direct}
        order = [m for c in sorted(expected) for m in expected[c]]
        assert [m["message_id"] for m in messages] == order
        assert all(m["sender_id"] == me.user_id for m in messages)
        texts = {m["message_id"]: m for m in messages}
        assert texts[in_group[3]]["text"] == "edited" and "edited_at" in texts[in_group[3]]
        assert texts[secret]["text"] == "" and texts[secret]["deleted"] is True
        assert texts[in_direct[0]]["text"] == "direct 0"
        assert rest[-1] == {"type": "end", "messages": len(order)}
        # The lines come in this order of kinds, each kind together.
        kinds = [line["type"] for line in lines]
        firsts = list(dict.fromkeys(kinds))
        assert firsts == [
            "export",
            "account",
            "settings",
            "device",
            "push_endpoint",
            "friend",
            "block",
            "channel",
            "message",
            "end",
        ]
        assert kinds == sorted(kinds, key=firsts.index)

        # The client library reads the same lines.
        again = await exported(api, me)
        assert [line for line in again if line["type"] != "export"] == lines[1:]


async def test_an_export_holds_what_the_user_sent_in_a_group_they_have_left(api: Api) -> None:
    me, owner = await api.new_device("ex"), await api.new_device("ex")
    group = await api.group(owner, [me.user_id], name="Left behind")
    mine = await api.connect(me)
    words = [f"zanzibarleft{i}" for i in range(3)]
    ids = await sent(mine, group, words)
    await mine.close()

    async def indexed() -> bool:  # the index tells which channels a user sent in
        return len((await api.search(me, words[-1]))["results"]) == 1

    await eventually(indexed, 30, "the messages indexed")
    await api.remove_member(owner, group, me.user_id)

    lines = await exported(api, me)
    assert [line for line in lines if line["type"] == "channel"] == [
        {"type": "channel", "channel_id": group, "channel_type": "group", "left": True}
    ]
    messages = [line for line in lines if line["type"] == "message"]
    assert [(m["message_id"], m["text"]) for m in messages] == list(zip(ids, words, strict=True))
    assert lines[-1] == {"type": "end", "messages": 3}


async def test_one_export_at_a_time_a_few_an_hour_and_a_cut_stream_gives_its_place_back(
    stack: Stack,
) -> None:
    async with (
        extra_gateway(stack, PARLEY_EXPORTS_PER_HOUR="3") as gateway,
        Api(gateway.url) as api,
    ):
        me, other = await api.new_device("el"), await api.new_device("el")
        await api.create_group(me, "g", [other.user_id])
        headers = {"authorization": f"Bearer {me.token}"}
        # One in progress: the next is refused until it ends.
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=60) as reader,
            reader.stream("GET", "/v1/users/me/export", headers=headers) as first,
        ):
            assert first.status_code == 200
            lines = first.aiter_lines()
            assert orjson.loads(await anext(lines))["type"] == "export"
            with pytest.raises(ApiError) as refused:
                await exported(api, me)
            assert (refused.value.status, refused.value.code) == (429, "rate_limited")
            assert refused.value.retry_after_s is not None
            # Another user's export is their own.
            assert (await exported(api, other))[-1]["type"] == "end"
        # Cut short by the client: its place is given back.

        async def admitted() -> bool:
            response = await api.request("GET", "/v1/users/me/export", auth=me)
            return response.status_code == 200

        await eventually(admitted, 30, "an export admitted after the cut one")
        # Three an hour: the cut one, the one just made and one more; the fourth waits.
        assert (await exported(api, me))[-1]["type"] == "end"
        response = await api.request("GET", "/v1/users/me/export", auth=me)
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 1200
        assert response.json()["error"]["code"] == "rate_limited"


async def test_an_export_needs_a_token(api: Api) -> None:
    response = await api.request("GET", "/v1/users/me/export")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
