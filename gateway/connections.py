"""The sockets connected to this gateway, by user and by device."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.ratelimit import TokenBucket


class Deliverable(Protocol):
    @property
    def device_id(self) -> str: ...

    def deliver(self, channel_id: str, message_id: int, text: str) -> None: ...

    def revoke(self) -> None: ...

    def kill(self, code: int, reason: str) -> None: ...


class Registry:
    def __init__(self, send_rate_per_s: float, send_burst: int) -> None:
        self._by_user: dict[str, set[Deliverable]] = {}
        # Made at a device's first send, not at connect: most sockets are idle.
        self._buckets: dict[str, TokenBucket] = {}
        self._rate = send_rate_per_s
        self._burst = send_burst

    def add(self, user_id: str, connection: Deliverable) -> None:
        self._by_user.setdefault(user_id, set()).add(connection)

    def remove(self, user_id: str, connection: Deliverable) -> None:
        users = self._by_user.get(user_id)
        if users is None or connection not in users:
            return
        users.discard(connection)
        if not users:
            del self._by_user[user_id]
        device_id = connection.device_id
        if not any(c.device_id == device_id for c in users):
            self._buckets.pop(device_id, None)

    def of_user(self, user_id: str) -> Iterable[Deliverable]:
        return tuple(self._by_user.get(user_id, ()))

    def rate_bucket(self, device_id: str) -> TokenBucket:
        """The device's send bucket, shared by all its sockets on this gateway."""
        bucket = self._buckets.get(device_id)
        if bucket is None:
            bucket = self._buckets[device_id] = TokenBucket(self._rate, self._burst)
        return bucket

    def count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def all(self) -> list[Deliverable]:
        return [c for conns in self._by_user.values() for c in conns]
