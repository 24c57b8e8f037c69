"""The sockets connected to this gateway, by user and by device."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.ratelimit import DeviceLimits


class Deliverable(Protocol):
    @property
    def device_id(self) -> str: ...

    def deliver(self, channel_id: str, message_id: int, text: str) -> None: ...

    def signal(self, text: str) -> None: ...

    def revoke(self) -> None: ...

    def kill(self, code: int, reason: str) -> None: ...


class Registry:
    def __init__(self, limits: DeviceLimits) -> None:
        self._by_user: dict[str, set[Deliverable]] = {}
        self._sockets_of: dict[str, int] = {}  # per device
        self.limits = limits

    def add(self, user_id: str, connection: Deliverable) -> None:
        self._by_user.setdefault(user_id, set()).add(connection)
        device_id = connection.device_id
        self._sockets_of[device_id] = self._sockets_of.get(device_id, 0) + 1

    def remove(self, user_id: str, connection: Deliverable) -> None:
        users = self._by_user.get(user_id)
        if users is None or connection not in users:
            return
        users.discard(connection)
        if not users:
            del self._by_user[user_id]
        device_id = connection.device_id
        left = self._sockets_of[device_id] - 1
        if left:
            self._sockets_of[device_id] = left
        else:
            del self._sockets_of[device_id]
            self.limits.left(device_id, self._sockets_of)

    def of_user(self, user_id: str) -> Iterable[Deliverable]:
        return tuple(self._by_user.get(user_id, ()))

    def sockets_of(self, device_id: str) -> int:
        """How many sockets the device has open on this gateway."""
        return self._sockets_of.get(device_id, 0)

    def count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def all(self) -> list[Deliverable]:
        return [c for conns in self._by_user.values() for c in conns]
