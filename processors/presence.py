"""Presence: who is online, decided from device events (processors/app.py runs it).

Rules (SPEC §4):
- a user is online while any of their sockets has been seen within `timeout_ms` (a connect,
  heartbeat or disconnect event carries the time the gateway saw it);
- offline when none has, detected by `expire` on a timer even if no event arrives, or at once
  when the last device logs out;
- a socket that drops and comes back within the timeout causes no change of status: a
  disconnect does not end the user's liveness, only the timeout does;
- after a restart, users recorded online are taken as seen at the moment of recovery, so a
  restart flips nobody offline; those whose devices are really gone expire one timeout later.

Beside the status the tracker decides `connected`: whether any socket of the user is open
(connected or heartbeating, not yet disconnected, and seen within the timeout). It drops at
once with the last socket, while the status waits out the timeout; push notifications go by
it, because from the drop on no device receives messages.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from schemas.events import PresenceEventV1
from storage.protocols import Presence

RECOVERED = "(recovered)"


@dataclass(frozen=True)
class Change:
    """A user's new presence; `status_changed` tells whether online/offline flipped (and so is
    news for watchers) or only `connected` did."""

    presence: Presence
    status_changed: bool


@dataclass
class _User:
    sockets: dict[str, tuple[str, int]] = field(
        default_factory=dict
    )  # connection -> (device, seen)
    open: set[str] = field(default_factory=set)  # connections not disconnected
    logged_out: set[str] = field(default_factory=set)  # devices whose tokens are revoked
    online: bool = False
    connected: bool = False
    last_active_ms: int = 0


class PresenceTracker:
    def __init__(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._users: dict[str, _User] = {}
        self._deadlines: list[tuple[int, str]] = []

    def apply(self, event: PresenceEventV1, now_ms: int) -> Change | None:
        """Take one device event; returns the user's new presence if it changed."""
        user = self._users.setdefault(event.user_id, _User())
        user.last_active_ms = max(user.last_active_ms, event.at_ms)
        if event.device_id in user.logged_out:
            return None  # e.g. the disconnect of the socket a logout closed
        if event.kind == "logout":
            user.logged_out.add(event.device_id)
            user.sockets = {c: s for c, s in user.sockets.items() if s[0] != event.device_id}
            user.sockets.pop(RECOVERED, None)
            user.open &= user.sockets.keys()
            online = user.online and self._alive(user, now_ms)
            return self._update(event.user_id, user, online)
        _, seen = user.sockets.get(event.connection_id, ("", 0))
        user.sockets[event.connection_id] = (event.device_id, max(seen, event.at_ms))
        heapq.heappush(self._deadlines, (event.at_ms + self._timeout_ms, event.user_id))
        # A replayed event older than the timeout says nothing about now.
        fresh = event.at_ms + self._timeout_ms > now_ms
        if event.kind == "disconnect":
            user.open.discard(event.connection_id)
        elif fresh:
            user.open.add(event.connection_id)
        online = user.online or (fresh and event.kind != "disconnect")
        return self._update(event.user_id, user, online)

    def expire(self, now_ms: int) -> list[Change]:
        """Users whose every socket went unseen for the timeout, now offline; and users whose
        open sockets went unseen for the timeout (their gateway died), now not connected."""
        changes = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            _, user_id = heapq.heappop(self._deadlines)
            user = self._users.get(user_id)
            if user is None:
                continue
            user.sockets = {
                c: s for c, s in user.sockets.items() if s[1] + self._timeout_ms > now_ms
            }
            user.open &= user.sockets.keys()
            change = self._update(user_id, user, user.online and bool(user.sockets))
            if change is not None:
                changes.append(change)
            if not user.sockets and not user.online:
                del self._users[user_id]
        return changes

    def recover(self, online: list[Presence], now_ms: int) -> None:
        """Take users recorded online (after a restart or rebalance) as seen now, and those
        recorded connected as still connected until their sockets report or time out."""
        for presence in online:
            user = self._users.setdefault(presence.user_id, _User())
            user.online = True
            user.connected = presence.connected
            user.last_active_ms = max(user.last_active_ms, presence.last_active_ms)
            user.sockets.setdefault(RECOVERED, ("", now_ms))
            if presence.connected:
                user.open.add(RECOVERED)
            heapq.heappush(self._deadlines, (now_ms + self._timeout_ms, presence.user_id))

    def forget(self, user_ids: set[str]) -> None:
        """Drop users whose partitions this worker no longer owns."""
        for user_id in user_ids:
            self._users.pop(user_id, None)

    def user_ids(self) -> list[str]:
        return list(self._users)

    def _alive(self, user: _User, now_ms: int) -> bool:
        return any(seen + self._timeout_ms > now_ms for _, seen in user.sockets.values())

    def _update(self, user_id: str, user: _User, online: bool) -> Change | None:
        connected = online and bool(user.open)
        if online == user.online and connected == user.connected:
            return None
        status_changed = online != user.online
        user.online, user.connected = online, connected
        presence = Presence(
            user_id, "online" if online else "offline", user.last_active_ms, connected
        )
        return Change(presence, status_changed)
