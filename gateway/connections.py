"""The sockets connected to this gateway, by user and by device."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.ratelimit import TokenBucket


class Deliverable(Protocol):
    device_id: str

    def deliver(self, channel_id: str, message_id: int, text: str) -> None: ...

    def revoke(self) -> None: ...

    def kill(self, code: int, reason: str) -> None: ...


class Registry:
    def __init__(self, send_rate_per_s: float, send_burst: int) -> None:
        self._by_user: dict[str, set[Deliverable]] = {}
        self._buckets: dict[str, tuple[TokenBucket, int]] = {}
        self._rate = send_rate_per_s
        self._burst = send_burst

    def add(self, user_id: str, connection: Deliverable) -> None:
        self._by_user.setdefault(user_id, set()).add(connection)
        bucket, count = self._buckets.get(connection.device_id, (None, 0))
        self._buckets[connection.device_id] = (
            bucket or TokenBucket(self._rate, self._burst),
            count + 1,
        )

    def remove(self, user_id: str, connection: Deliverable) -> None:
        users = self._by_user.get(user_id)
        if users is None or connection not in users:
            return
        users.discard(connection)
        if not users:
            del self._by_user[user_id]
        bucket, count = self._buckets[connection.device_id]
        if count <= 1:
            del self._buckets[connection.device_id]
        else:
            self._buckets[connection.device_id] = (bucket, count - 1)

    def of_user(self, user_id: str) -> Iterable[Deliverable]:
        return tuple(self._by_user.get(user_id, ()))

    def rate_bucket(self, device_id: str) -> TokenBucket:
        """The device's send bucket, shared by all its sockets on this gateway."""
        return self._buckets[device_id][0]

    def count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def all(self) -> list[Deliverable]:
        return [c for conns in self._by_user.values() for c in conns]
