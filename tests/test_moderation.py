"""Moderation: members report messages (to the group's owners and admins, and to the
operator), and the operator's API (its own token from the environment) lists reports,
suspends a user (their sockets close at once on every gateway, their tokens and log-ins are
refused, their profile says so) and deletes a user's messages in bulk through the normal
delete path; every operator action is recorded on the audit topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from parley_client import ApiError, Operator
from schemas.settings import Settings
from storage.stores import Stores
from tests.conftest import PASSWORD, Api, eventually, extra_gateway, sent
from tests.stack import Process, Stack
from topics.definitions import audit_topic

ADMIN_TOKEN = "operator-token-for-the-tests-0123456789"
OPERATOR = Operator(ADMIN_TOKEN)


async def refused(call: Any, status: int, code: str) -> None:
    with pytest.raises(ApiError) as error:
        await call
    assert (error.value.status, error.value.code) == (status, code), error.value


@pytest.fixture
async def admin_gateway(stack: Stack) -> AsyncIterator[Process]:
    """A second gateway of the stack, with the admin token."""
    async with extra_gateway(stack, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN) as gateway:
        yield gateway


@pytest.fixture
async def admin_api(admin_gateway: Process) -> AsyncIterator[Api]:
    async with Api(admin_gateway.url) as client:
        yield client


async def audited(settings: Settings, request_id: str) -> dict[str, Any]:
    """The audit topic's record of the request `request_id`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(audit_topic(settings).name, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        records: list[dict[str, Any]] = []
        while await consumer.position(tp) < end:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [orjson.loads(r.value) for r in batch if r.value]
    finally:
        await consumer.stop()
    found = [r for r in records if r["request_id"] == request_id]
    assert len(found) == 1, found
    return found[0]


async def test_a_report_reaches_the_groups_owners_and_admins_once(api: Api) -> None:
    owner, admin, member, spammer, outsider = [await api.new_device("rp") for _ in range(5)]
    group = await api.group(owner, [admin.user_id, member.user_id, spammer.user_id])
    await api.set_role(owner, group, admin.user_id, "admin")
    spam_socket = await api.connect(spammer)
    [spam] = await sent(spam_socket, group, ["buy cheap watches"])
    member_socket = await api.connect(member)
    [own] = await sent(member_socket, group, ["hello all"])

    first = await api.report(member, group, spam, "spam", "third time today")
    assert first["reason"] == "spam" and first["note"] == "third time today"
    assert (first["sender_id"], first["reporter_id"]) == (spammer.user_id, member.user_id)
    assert first["text"] == "buy cheap watches"
    # Once per reporter: a repeat answers the first report (200, not 201).
    again = await api.request(
        "POST",
        f"/v1/channels/{group}/messages/{spam}/reports",
        auth=member,
        json={"reason": "other"},
    )
    assert again.status_code == 200 and again.json()["report_id"] == first["report_id"]
    await api.report(admin, group, spam, "harassment")

    # The owner and the admin read the group's reports; the reporter is not named to them.
    for manager in (owner, admin):
        reports = await api.channel_reports(manager, group)
        assert [r["reason"] for r in reports] == ["harassment", "spam"]
        assert all("reporter_id" not in r and "text" not in r for r in reports)
    assert [r["reason"] for r in await api.channel_reports(owner, group, limit=1)] == ["harassment"]
    older = await api.channel_reports(owner, group, before=reports[0]["report_id"])
    assert [r["reason"] for r in older] == ["spam"]
    await refused(api.channel_reports(member, group), 403, "forbidden")
    await refused(api.channel_reports(outsider, group), 403, "not_member")

    # Only members, of messages they could see, living, someone else's.
    await refused(api.report(outsider, group, spam, "spam"), 403, "not_member")
    await refused(api.report(member, group, own, "spam"), 422, "invalid")
    await refused(api.report(member, group, str(int(spam) + 1), "spam"), 404, "not_found")
    await refused(api.report(member, group, spam, "boring"), 422, "invalid")  # type: ignore[arg-type]
    await refused(api.report(member, group, spam, "spam", "x" * 501), 422, "invalid")
    await refused(api.report(member, group, spam, "spam", "a\nb"), 422, "invalid")
    response = await api.request(
        "POST", f"/v1/channels/{group}/messages/{spam}/reports", auth=member, json=["spam"]
    )
    assert response.status_code == 422
    response = await api.request("POST", f"/v1/channels/{group}/messages/x/reports", auth=member)
    assert response.status_code == 422

    # A removed member reports nothing more, at once.
    await api.remove_member(owner, group, member.user_id)
    await refused(api.report(member, group, spam, "hate"), 403, "not_member")
    await refused(api.channel_reports(member, group), 403, "not_member")


async def test_a_blocker_may_report_what_the_blocked_user_sent(api: Api) -> None:
    blocker, pest = await api.new_device("rb"), await api.new_device("rb")
    await api.make_friends(blocker, pest)
    dm = await api.direct(pest, blocker.user_id)
    [nasty] = await sent(await api.connect(pest), dm, ["you again"])
    await api.block(blocker, pest.user_id)
    report = await api.report(blocker, dm, nasty, "harassment")
    assert report["sender_id"] == pest.user_id
    # A direct channel has no owners or admins to read its reports: the operator does.
    await refused(api.channel_reports(blocker, dm), 403, "forbidden")


async def test_deleted_messages_and_messages_from_before_a_join_are_neither_reported_nor_shown(
    api: Api,
) -> None:
    owner, first, late = [await api.new_device("rv") for _ in range(3)]
    made = await api.create_group(owner, "closed", [first.user_id], history_visible=False)
    group = made["channel_id"]
    socket = await api.connect(owner)
    [before, gone] = await sent(socket, group, ["before you came", "soon gone"])
    await api.report(first, group, before, "spam")
    await api.add_member(owner, group, late.user_id)
    [after] = await sent(socket, group, ["after you came"])
    assert (await api.report(late, group, after, "other"))["message_id"] == after
    await refused(api.report(late, group, before, "spam"), 404, "not_found")
    # Made an admin, the late member reads the reports of what they may see only.
    await api.set_role(owner, group, late.user_id, "admin")
    assert [r["message_id"] for r in await api.channel_reports(late, group)] == [after]
    assert [r["message_id"] for r in await api.channel_reports(owner, group)] == [after, before]
    await socket.accepted(await socket.delete(group, gone))
    await socket.until(lambda f: f["type"] == "delete" and f["target_id"] == gone)
    await refused(api.report(late, group, gone, "spam"), 404, "not_found")


async def test_reports_are_rate_limited_per_user(api: Api, stack: Stack) -> None:
    async with extra_gateway(stack, PARLEY_REPORT_BURST="2") as gateway, Api(gateway.url) as own:
        owner, reporter = await own.new_device("rl"), await own.new_device("rl")
        group = await own.group(owner, [reporter.user_id])
        ids = await sent(await own.connect(owner), group, ["one", "two", "three"])
        await own.report(reporter, group, ids[0], "spam")
        await own.report(reporter, group, ids[1], "spam")
        response = await own.request(
            "POST",
            f"/v1/channels/{group}/messages/{ids[2]}/reports",
            auth=reporter,
            json={"reason": "spam"},
        )
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


async def test_without_an_admin_token_the_admin_api_does_not_exist(api: Api) -> None:
    user = await api.new_device("na")
    for method, path in (
        ("GET", "/v1/admin/reports"),
        ("PUT", f"/v1/admin/users/{user.user_id}/suspension"),
        ("POST", f"/v1/admin/users/{user.user_id}/messages/delete"),
    ):
        for auth in (None, user, Operator("x"), OPERATOR):
            response = await api.request(method, path, auth=auth)
            assert response.status_code == 404, (path, response.text)
    await api.user(user, user.user_id)  # not suspended


async def test_the_admin_api_takes_its_token_only(admin_api: Api) -> None:
    user = await admin_api.new_device("at")
    for auth in (None, user, Operator(ADMIN_TOKEN[:-1]), Operator(ADMIN_TOKEN + "x")):
        response = await admin_api.request("GET", "/v1/admin/reports", auth=auth)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
    await refused(admin_api.suspend(OPERATOR, "12345"), 404, "not_found")
    await refused(admin_api.suspend(OPERATOR, "abc"), 422, "invalid")
    await refused(admin_api.admin_reports(OPERATOR, limit=0), 422, "invalid")
    await refused(admin_api.delete_messages_of(OPERATOR, user.user_id, after="x"), 422, "invalid")


async def test_an_operator_suspends_a_spammer_everywhere_and_lifts_it(
    api: Api, admin_api: Api, settings: Settings
) -> None:
    reporter, spammer = await api.new_device("su"), await api.new_device("su")
    group = await api.group(reporter, [spammer.user_id])
    here = await api.connect(spammer)  # on the shared gateway
    there = await admin_api.connect(spammer)  # on the operator's
    [spam] = await sent(here, group, ["win a prize, click here"])
    report = await api.report(reporter, group, spam, "spam", "a link to a scam")

    queue = await admin_api.admin_reports(OPERATOR)
    assert report["report_id"] in [r["report_id"] for r in queue]
    mine = next(r for r in queue if r["report_id"] == report["report_id"])
    assert (mine["reporter_id"], mine["sender_id"]) == (reporter.user_id, spammer.user_id)

    response = await admin_api.request(
        "PUT", f"/v1/admin/users/{spammer.user_id}/suspension", auth=OPERATOR
    )
    assert response.status_code == 204
    request_id = response.headers["x-request-id"]
    # Every socket closes, on every gateway, with 4003.
    assert [await s.wait_closed(10) for s in (here, there)] == [4003, 4003]
    record = await audited(settings, request_id)
    assert (record["type"], record["v"], record["actor"]) == ("admin.action", 1, "operator")
    assert (record["action"], record["target"]) == ("user.suspend", spammer.user_id)

    # Tokens, new sockets and log-ins are refused; others see the account as suspended.
    await refused(api.channels(spammer), 403, "suspended")
    again = await api.open()
    await again.send_hello(spammer.token)
    assert await again.wait_closed(10) == 4003
    await refused(api.log_in(spammer.username, PASSWORD), 403, "suspended")
    await refused(api.log_in(spammer.username, "wrong password"), 401, "bad_credentials")
    assert (await api.user(reporter, spammer.user_id)).get("suspended") is True
    await admin_api.suspend(OPERATOR, spammer.user_id)  # idempotent

    await admin_api.unsuspend(OPERATOR, spammer.user_id)
    assert "suspended" not in await api.user(reporter, spammer.user_id)
    assert [c["channel_id"] for c in await api.channels(spammer)] == [group]
    await api.log_in(spammer.username, PASSWORD)


async def test_an_operator_deletes_a_users_messages_in_bulk_through_the_delete_path(
    api: Api, admin_api: Api, stores: Stores, settings: Settings
) -> None:
    owner, spammer = await api.new_device("bd"), await api.new_device("bd")
    first = await api.group(owner, [spammer.user_id], "first")
    second = await api.group(owner, [spammer.user_id], "second")
    spam_socket = await api.connect(spammer)
    spam = await sent(spam_socket, first, ["a", "b", "c"]) + await sent(spam_socket, second, ["d"])
    owner_socket = await api.connect(owner)
    [kept] = await sent(owner_socket, first, ["the owner's own"])

    async def indexed() -> bool:
        found = await stores.search.sent_by(spammer.user_id, after=None, limit=10)
        return len(found) == 4

    await eventually(indexed, 30, "the spam indexed")
    page = await admin_api.delete_messages_of(OPERATOR, spammer.user_id, limit=3)
    assert page["deleted"] == 3 and page["next"] is not None
    rest = await admin_api.delete_messages_of(
        OPERATOR, spammer.user_id, after=page["next"], limit=3
    )
    assert rest == {"deleted": 1, "next": None}

    # Members see the deletes as any delete; the history keeps tombstones; the index forgets.
    deleted = set()
    while deleted != set(spam):
        frame = await owner_socket.until(lambda f: f["type"] == "delete")
        assert frame["sender_id"] == "operator"
        deleted.add(frame["target_id"])
    history = {m["message_id"]: m for m in await api.history(owner, first)}
    assert [history[m].get("deleted") for m in spam[:3]] == [True, True, True]
    assert history[kept]["text"] == "the owner's own"

    async def forgotten() -> bool:
        return await stores.search.sent_by(spammer.user_id, after=None, limit=10) == []

    await eventually(forgotten, 30, "the spam out of the index")
    again = await admin_api.delete_messages_of(OPERATOR, spammer.user_id)
    assert again == {"deleted": 0, "next": None}
    response = await admin_api.request(
        "POST",
        f"/v1/admin/users/{spammer.user_id}/messages/delete",
        auth=OPERATOR,
        params={"limit": 1},
    )
    record = await audited(settings, response.headers["x-request-id"])
    assert (record["action"], record["target"]) == ("user.messages.delete", spammer.user_id)
    assert record["detail"] == {"deleted": 0, "more": False}
