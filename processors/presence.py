"""Presence: who is online, decided from device events (processors/app.py runs it).

Rules (SPEC §4):
- a user is online while any of their sockets has been seen within `timeout_ms` (a connect,
  heartbeat or disconnect event carries the time the gateway saw it; a `presence.seen`
  record carries one such time per socket, and each entry counts as that socket's heartbeat);
- offline when none has, detected by `expire` on a timer even if no event arrives, or at once
  when the last device logs out;
- a socket that drops and comes back within the timeout causes no change of status: a
  disconnect does not end the user's liveness, only the timeout does;
- a heartbeat of a socket already disconnected is ignored: a gateway's `presence.seen` record
  may reach the processor after that socket's `disconnect` (the gateway sends none such, but
  the decision must not depend on it), and must not reopen the socket or extend its liveness
  (the disconnect's time is later than any of its heartbeats);
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

from schemas.events import PresenceEventV1, PresenceSeenV1
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
    closed: set[str] = field(default_factory=set)  # disconnected connections still in sockets
    # Devices whose tokens are revoked -> when the logout was read: remembered for a timeout
    # after it (the disconnects of the sockets a logout closes follow it within that), so the
    # record of a user whose last device logged out outlives its sockets by as much.
    logged_out: dict[str, int] = field(default_factory=dict)
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
        return self._apply(
            event.kind, event.user_id, event.device_id, event.connection_id, event.at_ms, now_ms
        )

    def apply_seen(self, record: PresenceSeenV1, now_ms: int) -> list[Change]:
        """Take a gateway's aggregated heartbeats: each entry as that socket's `heartbeat`
        event at the entry's time. Returns the changes, in entry order."""
        changes = []
        for user_id, device_id, connection_id, at_ms in record.seen:
            change = self._apply("heartbeat", user_id, device_id, connection_id, at_ms, now_ms)
            if change is not None:
                changes.append(change)
        return changes

    def _apply(
        self,
        kind: str,
        user_id: str,
        device_id: str,
        connection_id: str,
        at_ms: int,
        now_ms: int,
    ) -> Change | None:
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = _User()
        elif kind == "heartbeat" and connection_id in user.closed:
            return None  # a sighting from before its disconnect, read after it
        user.last_active_ms = max(user.last_active_ms, at_ms)
        if device_id in user.logged_out:
            return None  # e.g. the disconnect of the socket a logout closed
        if kind == "logout":
            user.logged_out[device_id] = now_ms
            heapq.heappush(self._deadlines, (now_ms + self._timeout_ms, user_id))
            user.sockets = {c: s for c, s in user.sockets.items() if s[0] != device_id}
            user.sockets.pop(RECOVERED, None)
            user.open &= user.sockets.keys()
            user.closed &= user.sockets.keys()
            online = user.online and self._alive(user, now_ms)
            return self._update(user_id, user, online)
        _, seen = user.sockets.get(connection_id, ("", 0))
        user.sockets[connection_id] = (device_id, max(seen, at_ms))
        heapq.heappush(self._deadlines, (at_ms + self._timeout_ms, user_id))
        # A replayed event older than the timeout says nothing about now.
        fresh = at_ms + self._timeout_ms > now_ms
        if kind == "disconnect":
            user.open.discard(connection_id)
            user.closed.add(connection_id)
        elif fresh and connection_id not in user.closed:
            user.open.add(connection_id)
        online = user.online or (fresh and kind != "disconnect")
        return self._update(user_id, user, online)

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
            user.closed &= user.sockets.keys()
            user.logged_out = {
                d: at for d, at in user.logged_out.items() if at + self._timeout_ms > now_ms
            }
            change = self._update(user_id, user, user.online and bool(user.sockets))
            if change is not None:
                changes.append(change)
            if not user.sockets and not user.online and not user.logged_out:
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
