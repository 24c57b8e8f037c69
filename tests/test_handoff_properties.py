"""Properties of the sync/live handoff (gateway/sync.py `Handoff`), over any interleaving of
messages stored, delivered live (in order per channel, redelivered at will: the inbox is
at-least-once) and read by the sync: each socket gets every message exactly once, in order
per channel, and everything stored before the sync began comes before `synced`.

The store is a small in-memory stand-in: the class under test is the handoff, not a store."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.encoding import frame
from gateway.sync import Handoff
from schemas.frames import Hello
from schemas.ids import EPOCH_MS, id_floor
from storage.protocols import Device, Membership

CHANNELS = ["a", "b"]
CREATED_MS = EPOCH_MS + 1_000
BASE = id_floor(CREATED_MS)  # the first id the device has not seen

# ("store", channel, also live if stored before the sync began) | ("live", channel) |
# ("replay", channel, which earlier delivery).
actions = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.sampled_from(CHANNELS), st.booleans()),
        st.tuples(st.just("live"), st.sampled_from(CHANNELS)),
        st.tuples(st.just("replay"), st.sampled_from(CHANNELS), st.integers(0, 20)),
    ),
    max_size=120,
)


@dataclass
class Row:
    channel_id: str
    message_id: int
    target_id: int | None = None
    reply_to: int | None = None  # what sync reads of a row to quote replies: none here
    deleted: bool = False

    def wire(self) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "message_id": self.message_id}


def live_frame(channel_id: str, message_id: int) -> str:
    return frame({"type": "message", "channel_id": channel_id, "message_id": message_id})


class World:
    """The store, the inbox and the socket's outbox; `tick` runs the script's next actions
    at each point where the sync awaits (where, for real, other deliveries can come in)."""

    def __init__(self, script: list[tuple[Any, ...]], per_tick: list[int]) -> None:
        self.script = deque(script)
        self.per_tick = deque(per_tick)
        self.handoff = Handoff()
        self.stored: dict[str, list[int]] = {c: [] for c in CHANNELS}
        self.before_sync: dict[str, list[int]] = {c: [] for c in CHANNELS}
        self.inbox: dict[str, deque[int]] = {c: deque() for c in CHANNELS}  # not yet delivered
        self.offered: dict[str, list[int]] = {c: [] for c in CHANNELS}
        self.syncing = False
        self.sent: list[str] = []

    def tick(self, count: int | None = None) -> None:
        if count is None:
            count = self.per_tick[0]
            self.per_tick.rotate(-1)
        for _ in range(count):
            if not self.script:
                return
            self.act(self.script.popleft())

    def act(self, action: tuple[Any, ...]) -> None:
        channel = action[1]
        if action[0] == "store":
            message_id = BASE + len(self.stored[channel])
            self.stored[channel].append(message_id)
            if not self.syncing:
                self.before_sync[channel].append(message_id)
            # Fanned out after the read position was fixed: it comes live. Before: it may.
            if self.syncing or action[2]:
                self.inbox[channel].append(message_id)
        elif action[0] == "live":
            for c in [channel, *CHANNELS]:  # the next in the inbox, this channel's if any
                if self.inbox[c]:
                    self.offer(c, self.inbox[c].popleft())
                    break
        else:
            earlier = self.offered[channel] + self.before_sync[channel]
            if earlier:
                self.offer(channel, earlier[action[2] % len(earlier)])

    def offer(self, channel_id: str, message_id: int) -> None:
        self.offered[channel_id].append(message_id)
        text = self.handoff.offer(channel_id, message_id, live_frame(channel_id, message_id))
        if text is not None:
            self.sent.append(text)

    # --- the stores the sync reads ---------------------------------------------------------

    async def memberships(self, user_id: str) -> list[Membership]:
        self.tick()
        return [Membership(c, 0) for c in CHANNELS]

    async def cursors(self, device_id: str) -> dict[str, int]:
        self.tick()
        return {}

    async def flush_device(self, device_id: str) -> None:
        self.tick()

    async def last_message_ids(self, channel_ids: list[str]) -> dict[str, int]:
        self.tick()
        return {c: self.stored[c][-1] for c in channel_ids if self.stored[c]}

    async def page(self, channel_id: str, after: int, limit: int) -> list[Row]:
        self.tick()
        return [Row(channel_id, i) for i in self.stored[channel_id] if i > after][:limit]

    async def put(self, text: str) -> None:
        self.sent.append(text)
        self.tick()


@settings(max_examples=1000, deadline=None)
@given(
    actions,
    st.integers(min_value=0, max_value=len(CHANNELS) * 10),  # actions before the sync
    # Actions at each await of the sync, in turn.
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=4),  # page size
)
def test_every_message_exactly_once_in_order(
    script: list[tuple[Any, ...]], before: int, per_tick: list[int], page_size: int
) -> None:
    world = World(script, per_tick)
    world.tick(before)  # stored, and maybe delivered (held back), before the sync begins
    world.syncing = True
    services = SimpleNamespace(
        stores=SimpleNamespace(channels=world, cursors=world, messages=world),
        cursors=world,
        settings=SimpleNamespace(sync_page_size=page_size),
    )
    device = Device("d", "u", None, CREATED_MS)
    hello = Hello(type="hello", token="t")
    asyncio.run(world.handoff.sync(services, device, hello, world.put))  # type: ignore[arg-type]
    assert world.handoff.held == 0 and world.handoff.held_bytes == 0
    world.tick(len(world.script))  # the rest of the script, live
    for channel in CHANNELS:
        while world.inbox[channel]:
            world.offer(channel, world.inbox[channel].popleft())

    frames = [json.loads(text) for text in world.sent]
    assert [f["type"] for f in frames].count("synced") == 1
    synced_at = [f["type"] for f in frames].index("synced")
    for channel in CHANNELS:
        got = [f["message_id"] for f in frames if f.get("channel_id") == channel]
        assert got == world.stored[channel], "not every message exactly once, in order"
        early = [f["message_id"] for f in frames[:synced_at] if f.get("channel_id") == channel]
        assert set(world.before_sync[channel]) <= set(early), "the sync missed a stored message"
