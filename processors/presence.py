"""Presence: who is online, decided from device events (processors/app.py runs it).

Rules (SPEC §4):
- a user is online while any of their sockets has been seen within `timeout_ms` (a connect,
  heartbeat or disconnect event carries the time the gateway saw it);
- offline when none has, detected by `expire` on a timer even if no event arrives, or at once
  when the last device logs out;
- a socket that drops and comes back within the timeout causes no change at all: a disconnect
  does not end the user's liveness, only the timeout does;
- after a restart, users recorded online are taken as seen at the moment of recovery, so a
  restart flips nobody offline; those whose devices are really gone expire one timeout later.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from schemas.events import PresenceEventV1
from storage.protocols import Presence

RECOVERED = "(recovered)"


@dataclass
class _User:
    sockets: dict[str, tuple[str, int]] = field(
        default_factory=dict
    )  # connection -> (device, seen)
    logged_out: set[str] = field(default_factory=set)  # devices whose tokens are revoked
    online: bool = False
    last_active_ms: int = 0


class PresenceTracker:
    def __init__(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._users: dict[str, _User] = {}
        self._deadlines: list[tuple[int, str]] = []

    def apply(self, event: PresenceEventV1, now_ms: int) -> Presence | None:
        """Take one device event; returns the user's new presence if it changed."""
        user = self._users.setdefault(event.user_id, _User())
        user.last_active_ms = max(user.last_active_ms, event.at_ms)
        if event.device_id in user.logged_out:
            return None  # e.g. the disconnect of the socket a logout closed
        if event.kind == "logout":
            user.logged_out.add(event.device_id)
            user.sockets = {c: s for c, s in user.sockets.items() if s[0] != event.device_id}
            user.sockets.pop(RECOVERED, None)
            if user.online and not self._alive(user, now_ms):
                return self._set(event.user_id, user, online=False)
            return None
        _, seen = user.sockets.get(event.connection_id, ("", 0))
        user.sockets[event.connection_id] = (event.device_id, max(seen, event.at_ms))
        heapq.heappush(self._deadlines, (event.at_ms + self._timeout_ms, event.user_id))
        # A replayed event older than the timeout says nothing about now.
        fresh = event.at_ms + self._timeout_ms > now_ms
        if not user.online and fresh and event.kind != "disconnect":
            return self._set(event.user_id, user, online=True)
        return None

    def expire(self, now_ms: int) -> list[Presence]:
        """Users whose every socket went unseen for the timeout, now offline."""
        changes = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            _, user_id = heapq.heappop(self._deadlines)
            user = self._users.get(user_id)
            if user is None:
                continue
            user.sockets = {
                c: s for c, s in user.sockets.items() if s[1] + self._timeout_ms > now_ms
            }
            if user.online and not user.sockets:
                changes.append(self._set(user_id, user, online=False))
            if not user.sockets and not user.online:
                del self._users[user_id]
        return changes

    def recover(self, online: list[Presence], now_ms: int) -> None:
        """Take users recorded online (after a restart or rebalance) as seen now."""
        for presence in online:
            user = self._users.setdefault(presence.user_id, _User())
            user.online = True
            user.last_active_ms = max(user.last_active_ms, presence.last_active_ms)
            user.sockets.setdefault(RECOVERED, ("", now_ms))
            heapq.heappush(self._deadlines, (now_ms + self._timeout_ms, presence.user_id))

    def forget(self, user_ids: set[str]) -> None:
        """Drop users whose partitions this worker no longer owns."""
        for user_id in user_ids:
            self._users.pop(user_id, None)

    def user_ids(self) -> list[str]:
        return list(self._users)

    def _alive(self, user: _User, now_ms: int) -> bool:
        return any(seen + self._timeout_ms > now_ms for _, seen in user.sockets.values())

    def _set(self, user_id: str, user: _User, online: bool) -> Presence:
        user.online = online
        return Presence(user_id, "online" if online else "offline", user.last_active_ms)
