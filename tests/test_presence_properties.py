"""Properties of the presence tracker (processors/presence.py), over any interleaving of device
events, timers and clock: nobody goes offline while a socket of theirs was seen within the
timeout (a restart's recovery counting as a sighting), nobody stays online past a timer once
every socket went unseen for the timeout, `connected` never holds without `online`, and each
change says truly whether the status flipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.presence import Change, PresenceTracker
from schemas.events import PresenceEventV1
from storage.protocols import Presence

TIMEOUT_MS = 100
USERS = ["u1", "u2"]

Kind = Literal["connect", "heartbeat", "disconnect", "logout"]

# One step: a device event `lag` ms old when read, or a timer firing; each after `advance` ms.
events = st.tuples(
    st.just("event"),
    st.integers(min_value=0, max_value=60),  # advance
    st.sampled_from(["connect", "heartbeat", "heartbeat", "disconnect", "logout"]),
    st.sampled_from(USERS),
    st.sampled_from(["d1", "d2"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(min_value=0, max_value=2 * TIMEOUT_MS),  # lag
)
timers = st.tuples(st.just("expire"), st.integers(min_value=0, max_value=150))
steps = st.lists(st.one_of(events, timers), max_size=80)


@dataclass
class Seen:
    """What the tracker was told of one user, to judge its answers by."""

    online: bool = False
    # Per device, the newest sighting that must keep the user online (a lower bound: only
    # sockets never disconnected, and disconnects themselves; "" is the recovery).
    keeps: dict[str, int] = field(default_factory=dict)
    # Per device, the newest sighting of any kind (an upper bound on what can keep the user on).
    any_seen: dict[str, int] = field(default_factory=dict)
    logged_out: dict[str, int] = field(default_factory=dict)  # device -> when it logged out
    closed: set[str] = field(default_factory=set)  # connections disconnected


def check(change: Change, seen: Seen, now_ms: int) -> None:
    presence = change.presence
    online = presence.status == "online"
    assert not presence.connected or online, "connected without online"
    assert change.status_changed == (online != seen.online), "status_changed misreports"
    if not online:
        for at_ms in seen.keeps.values():
            assert at_ms + TIMEOUT_MS <= now_ms, "offline while a socket was seen within timeout"
    seen.online = online


@settings(max_examples=300, deadline=None)
@given(steps, st.lists(st.sampled_from(USERS), unique=True), st.booleans())
def test_online_exactly_while_seen_within_timeout(
    script: list[tuple[object, ...]], recovered: list[str], recovered_connected: bool
) -> None:
    tracker = PresenceTracker(TIMEOUT_MS)
    model = {u: Seen() for u in USERS}
    now = 1_000_000
    tracker.recover([Presence(u, "online", now - 5, recovered_connected) for u in recovered], now)
    for u in recovered:
        model[u].online = True
        model[u].keeps[""] = model[u].any_seen[""] = now
    for step in script:
        now += int(step[1])  # type: ignore[call-overload]
        if step[0] == "expire":
            for change in tracker.expire(now):
                check(change, model[change.presence.user_id], now)
            for seen in model.values():
                if seen.online:  # a timer has run: only a sighting within timeout keeps it
                    assert any(t + TIMEOUT_MS > now for t in seen.any_seen.values()), (
                        "online past the timeout of every socket"
                    )
            continue
        _, _, kind, user, device, socket, lag = step
        # A connection id names one socket of one device (the gateway draws 64 random bits
        # for each): never the same for two devices.
        connection = f"{device}/{socket}"
        at_ms = now - int(lag)  # type: ignore[call-overload]
        event = PresenceEventV1(
            kind=kind,  # type: ignore[arg-type]
            user_id=str(user),
            device_id=str(device),
            connection_id=str(connection),
            at_ms=at_ms,
        )
        seen = model[str(user)]
        if str(device) in seen.logged_out and (
            kind != "disconnect" or now >= seen.logged_out[str(device)] + TIMEOUT_MS
        ):
            # Its token is revoked: only the disconnects of the sockets the logout closed may
            # follow, within the timeout (the gateways close them as they read the logout).
            continue
        if str(device) not in seen.logged_out:
            if kind == "logout":
                seen.logged_out[str(device)] = now
                for table in (seen.keeps, seen.any_seen):
                    table.pop(str(device), None)
                    table.pop("", None)  # a logout ends the recovery's stand-in too
            else:
                seen.any_seen[str(device)] = max(seen.any_seen.get(str(device), 0), at_ms)
                if kind == "disconnect":
                    seen.closed.add(str(connection))
                if kind == "disconnect" or str(connection) not in seen.closed:
                    seen.keeps[str(device)] = max(seen.keeps.get(str(device), 0), at_ms)
        change = tracker.apply(event, now)
        if change is not None:
            check(change, seen, now)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3 * TIMEOUT_MS), max_size=30))
def test_a_fresh_connect_is_online_and_the_last_logout_offline_at_once(
    lags: list[int],
) -> None:
    tracker = PresenceTracker(TIMEOUT_MS)
    now = 1_000_000
    for lag in lags:
        now += 7
        change = tracker.apply(
            PresenceEventV1(
                kind="connect", user_id="u", device_id="d", connection_id="c", at_ms=now - lag
            ),
            now,
        )
        if change is not None:
            assert change.presence.status == "online" and lag < TIMEOUT_MS
    change = tracker.apply(
        PresenceEventV1(kind="logout", user_id="u", device_id="d", connection_id="c", at_ms=now),
        now,
    )
    if any(lag < TIMEOUT_MS for lag in lags):
        assert change is not None and change.presence.status == "offline"
        assert not change.presence.connected
    else:
        assert change is None
