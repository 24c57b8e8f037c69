"""Rate limits per device: sends, and every other frame, refused with `rate_limited` while the
socket stays open; reconnecting does not refill a spent bucket (SPEC §4)."""

from __future__ import annotations

from typing import Any

from parley_client import Session
from tests.conftest import Api, extra_gateway
from tests.stack import Stack


def refused(socket: Session) -> list[dict[str, Any]]:
    return [f for f in socket.errors() if f["code"] == "rate_limited"]


async def test_a_flood_of_presence_subscribes_and_acks_is_refused_and_the_socket_stays_open(
    api: Api,
) -> None:
    a, b = await api.new_device("rl_a"), await api.new_device("rl_b")
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    # 200 frames of burst, a subscribe costing 50: 60 of them are far beyond it.
    for _ in range(60):
        await socket.send_frame({"type": "presence.subscribe", "user_ids": [a.user_id]})
    for _ in range(400):
        await socket.send_frame({"type": "ack", "channel_id": channel, "message_id": "1"})
    cmid = await socket.send_message(channel, "still open")
    await socket.until(lambda f: f["type"] == "accepted" and f["client_msg_id"] == cmid)
    limited = refused(socket)
    assert limited, socket.errors()[:3]
    assert all(f["message"] == "too many frames; slow down" for f in limited)
    # Sends have a bucket of their own: the flood of other frames did not spend it.
    assert not [f for f in socket.errors() if f.get("ref") == cmid]


async def test_reconnecting_does_not_refill_a_spent_send_bucket(api: Api, stack: Stack) -> None:
    # A burst of 50 and a slow refill (one every 2 s), not the shared test gateway's loose
    # limits: the refill cannot make up for a reconnect however slow the machine is.
    async with extra_gateway(
        stack, PARLEY_SEND_RATE_PER_S="0.5", PARLEY_SEND_BURST="50"
    ) as gateway:
        a, b = await api.new_device("rr_a"), await api.new_device("rr_b")
        channel = await api.direct(a, b.user_id)
        first = await api.connect(a, url=gateway.ws_url)
        for i in range(60):
            await first.send_message(channel, "x", client_msg_id=f"first-{i}")
        await first.until(lambda f: f.get("client_msg_id", f.get("ref")) == "first-59")
        assert refused(first), "60 sends at once should pass a burst of 50"
        await first.close()
        again = await api.connect(a, url=gateway.ws_url)
        for i in range(40):
            await again.send_message(channel, "y", client_msg_id=f"again-{i}")
        await again.until(lambda f: f.get("client_msg_id", f.get("ref")) == "again-39")
        # A full bucket would take all 40; the spent one has refilled a few at most.
        assert len(refused(again)) >= 30, len(refused(again))
