"""Membership on the gateway, through the stream (gateway/memberships.py): a removed member's
sends are refused on every gateway once it applied the removal's `inbox.membership` event;
until then a send may still be accepted, and then it is stored and delivered like any other.
An addition, an unblock and a promotion count at once: refusals are never cached.

The window (removal's 204 on gateway A to the first refused send on gateway B) is printed by
`test_a_removed_members_sends_are_refused_on_another_gateway_within_a_window` (run it with
`-s`; PARLEY_TEST_WINDOW_SAMPLES samples, 20 by default); it is measured, never asserted."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from gateway.publisher import Publisher
from parley_client import Login, Session
from schemas.settings import Settings
from storage.stores import Stores
from tests.conftest import Api, before_mark, eventually, extra_gateway, marked, metric
from tests.stack import Stack

# Sends and frames unthrottled on the second gateway: the probe sends every few milliseconds.
UNTHROTTLED = {
    "PARLEY_SEND_RATE_PER_S": "100000",
    "PARLEY_SEND_BURST": "100000",
    "PARLEY_FRAME_RATE_PER_S": "100000",
    "PARLEY_FRAME_BURST": "100000",
}
PROBE_INTERVAL_S = 0.002


async def answer(socket: Session, client_msg_id: str) -> str:
    """`accepted`, or the code of the error answering the send."""
    frame = await socket.until(
        lambda f: (
            (f["type"] == "accepted" and f["client_msg_id"] == client_msg_id)
            or (f["type"] == "error" and f.get("ref") == client_msg_id)
        )
    )
    return "accepted" if frame["type"] == "accepted" else str(frame["code"])


async def probe_removal(
    api: Api, owner: Login, removed: Login, socket: Session, group: str
) -> tuple[float, list[str]]:
    """Remove `removed` through `api`'s gateway, then send from its `socket` (on another
    gateway) every PROBE_INTERVAL_S until one is refused. Returns the seconds from the 204 to
    the sending of the first refused probe, and the texts of the probes accepted before it."""
    sent: dict[str, tuple[float, str]] = {}
    answers: dict[str, str] = {}
    refused = asyncio.Event()

    async def read() -> None:
        while True:
            frame = await socket.next(None)
            if frame["type"] == "accepted" and frame["client_msg_id"] in sent:
                answers[frame["client_msg_id"]] = "accepted"
            elif frame["type"] == "error" and frame.get("ref") in sent:
                answers[str(frame["ref"])] = str(frame["code"])
                if frame["code"] == "not_member":
                    refused.set()

    reader = asyncio.create_task(read())
    try:
        await api.remove_member(owner, group, removed.user_id)
        start = time.monotonic()
        while not refused.is_set():
            assert time.monotonic() - start < 30, "the removal never reached the gateway"
            text = f"probe {len(sent)} {start}"
            sent[await socket.send_message(group, text)] = (time.monotonic(), text)
            await asyncio.sleep(PROBE_INTERVAL_S)  # the probe's cadence
        await eventually(lambda: _all_in(answers, sent), 30, "answers to every probe")
    finally:
        reader.cancel()
    codes = set(answers.values())
    assert codes <= {"accepted", "not_member"}, codes
    first_refused = min(at for cmid, (at, _) in sent.items() if answers[cmid] == "not_member")
    # Frames of a socket are handled in order, and a refusal is the store's word: once one
    # probe is refused, every later one is too.
    assert all(answers[c] == "not_member" for c, (at, _) in sent.items() if at >= first_refused)
    accepted = [text for cmid, (_, text) in sent.items() if answers[cmid] == "accepted"]
    return first_refused - start, accepted


async def _all_in(answers: dict[str, str], sent: dict[str, tuple[float, str]]) -> bool:
    return len(answers) == len(sent)


async def test_a_removed_members_sends_are_refused_on_another_gateway_within_a_window(
    api: Api, stack: Stack
) -> None:
    samples = int(os.environ.get("PARLEY_TEST_WINDOW_SAMPLES", "20"))
    async with extra_gateway(stack, **UNTHROTTLED) as b_gateway:
        owner, member, other = [await api.new_device("mw") for _ in range(3)]
        group = await api.group(owner, [member.user_id, other.user_id])
        owner_socket = await api.connect(owner)  # on gateway A, the shared one
        member_socket = await api.connect(member, url=b_gateway.ws_url)
        windows: list[float] = []
        in_window: list[str] = []
        last_accepted: list[str] = []
        expected = 0
        for sample in range(samples):
            if sample:
                await api.add_member(owner, group, member.user_id)
            # Accepted at once after the add (B never cached the refusal), then cached on B.
            for text in (f"member {sample}", f"cached {sample}"):
                sending = await member_socket.send_message(group, text)
                assert await answer(member_socket, sending) == "accepted"
            expected += 2
            window, last_accepted = await probe_removal(api, owner, member, member_socket, group)
            windows.append(window)
            in_window += last_accepted
            expected += len(last_accepted)

        # Accepted means stored and delivered: every probe accepted inside a window reached
        # the members at that point of the channel's order, and is in its history.
        delivered = await owner_socket.collect_messages(group, expected)
        texts = [m["text"] for m in delivered]
        assert set(in_window) <= set(texts)
        history = await api.history(other, group, limit=100)
        assert {m["text"] for m in history} >= set(last_accepted)
        await marked(owner_socket, group)  # after anything refused that was wrongly sent on
        assert len(before_mark(owner_socket, group)) == expected  # and nothing refused was
        # ...and not to the removed member, who was no longer one at that point.
        assert not set(in_window) & {m["text"] for m in member_socket.messages(group)}

        windows.sort()
        p50 = statistics.median(windows)
        p90, p99 = (windows[min(len(windows) - 1, int(len(windows) * q))] for q in (0.9, 0.99))
        print(
            f"\nremoval window over {samples} samples (204 on A to first refusal on B):"
            f" p50 {p50 * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms,"
            f" max {windows[-1] * 1000:.1f} ms;"
            f" {len(in_window)} sends accepted inside windows, all stored and delivered"
        )


async def test_an_added_member_is_accepted_at_once_where_it_was_refused(
    api: Api, stack: Stack
) -> None:
    async with extra_gateway(stack) as b_gateway:
        owner, member, newcomer = [await api.new_device("ma") for _ in range(3)]
        group = await api.group(owner, [member.user_id])
        socket = await api.connect(newcomer, url=b_gateway.ws_url)
        for _ in range(2):  # refused, and the refusal not remembered
            assert await answer(socket, await socket.send_message(group, "too soon")) == (
                "not_member"
            )
        await api.add_member(owner, group, newcomer.user_id)  # through gateway A
        assert await answer(socket, await socket.send_message(group, "welcome me")) == "accepted"

        # Promoted on A, the member deletes another's message on B at once: a refusal on the
        # cached role is asked of the store again.
        mine = await api.connect(owner)
        await mine.accepted(await mine.send_message(group, "the owner's"))
        target = (await socket.collect_messages(group, 2))[-1]
        assert target["text"] == "the owner's"
        await api.set_role(owner, group, newcomer.user_id, "admin")
        deleting = await socket.delete(group, target["message_id"])
        assert await answer(socket, deleting) == "accepted"


async def test_a_block_is_applied_by_the_event_and_an_unblock_at_once(
    api: Api, stack: Stack
) -> None:
    async with extra_gateway(stack) as b_gateway:
        blocker, pest = await api.new_device("mb"), await api.new_device("mb")
        dm = await api.direct(pest, blocker.user_id)
        socket = await api.connect(pest, url=b_gateway.ws_url)
        for text in ("first", "cached"):
            assert await answer(socket, await socket.send_message(dm, text)) == "accepted"
        # The first send read the store, the second did not.
        assert await metric(b_gateway.url, "parley_gateway_membership_cache_misses_total") >= 1
        assert await metric(b_gateway.url, "parley_gateway_membership_cache_hits_total") >= 1

        await api.block(blocker, pest.user_id)  # through gateway A

        async def refused() -> bool:
            return await answer(socket, await socket.send_message(dm, "blocked?")) != "accepted"

        await eventually(refused, 10, "the block to reach gateway B")
        await api.unblock(blocker, pest.user_id)
        assert await answer(socket, await socket.send_message(dm, "unblocked")) == "accepted"

        async def stored() -> bool:
            return "unblocked" in [m["text"] for m in await api.history(blocker, dm)]

        await eventually(stored, 15, "the message after the unblock to be stored")


async def test_without_its_event_a_removal_holds_on_a_gateway_until_the_ttl(
    api: Api, stack: Stack, stores: Stores, settings: Settings
) -> None:
    """A gateway that crashed between the commit and the publish: the removal reaches no
    gateway's cache, which reads the store again after `gateway_membership_ttl_s`. A send
    accepted meanwhile is stored and delivered to the members at that point."""
    async with extra_gateway(stack, PARLEY_GATEWAY_MEMBERSHIP_TTL_S="5") as b_gateway:
        owner, member = await api.new_device("mt"), await api.new_device("mt")
        group = await api.group(owner, [member.user_id])
        owner_socket = await api.connect(owner)
        socket = await api.connect(member, url=b_gateway.ws_url)
        assert await answer(socket, await socket.send_message(group, "cached")) == "accepted"

        members = await stores.channels.remove_member(group, member.user_id)
        publisher = Publisher(settings)  # only the processors hear of it
        await publisher.start()
        try:
            await publisher.members_changed(group, members)
        finally:
            await publisher.stop()

        late = await socket.send_message(group, "inside the ttl")
        assert await answer(socket, late) == "accepted"
        texts = [m["text"] for m in await owner_socket.collect_messages(group, 2)]
        assert texts == ["cached", "inside the ttl"]

        async def refused() -> bool:
            return await answer(socket, await socket.send_message(group, "x")) == "not_member"

        await eventually(refused, 15, "the cached membership to expire")
