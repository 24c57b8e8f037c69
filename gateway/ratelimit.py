"""Per-device rate limits: token buckets for sends and for every other frame (SPEC §4).

A device's buckets outlive its sockets on this gateway until they would be full again, so
reconnecting does not refill them: a device that spent its burst and reconnects at once finds
it still spent.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Container


class TokenBucket:
    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def full_at(self) -> float:
        """When (on the monotonic clock) the bucket will be full if nothing is taken."""
        return self._stamp + (self._burst - self._tokens) / self._rate


class DeviceLimits:
    """The send and frame buckets of the devices with sockets here (made at first use: most
    sockets are idle), and of those that left while a bucket was not yet full again."""

    def __init__(
        self, send_rate_per_s: float, send_burst: int, frame_rate_per_s: float, frame_burst: int
    ) -> None:
        self._send: dict[str, TokenBucket] = {}
        self._frames: dict[str, TokenBucket] = {}
        self._send_rate, self._send_burst = send_rate_per_s, send_burst
        self._frame_rate, self._frame_burst = frame_rate_per_s, frame_burst
        self._resting: list[tuple[float, str]] = []  # (full again at, device_id), a heap

    def send(self, device_id: str) -> TokenBucket:
        """The device's send bucket, shared by all its sockets on this gateway."""
        bucket = self._send.get(device_id)
        if bucket is None:
            bucket = self._send[device_id] = TokenBucket(self._send_rate, self._send_burst)
        return bucket

    def frames(self, device_id: str) -> TokenBucket:
        """The device's bucket for frames other than `send`."""
        bucket = self._frames.get(device_id)
        if bucket is None:
            bucket = self._frames[device_id] = TokenBucket(self._frame_rate, self._frame_burst)
        return bucket

    def left(self, device_id: str, connected: Container[str]) -> None:
        """The device's last socket here closed: its buckets are dropped once full again.
        `connected` is the devices with sockets here (whose buckets stay)."""
        full_at = max(
            (b.full_at() for b in (self._send.get(device_id), self._frames.get(device_id)) if b),
            default=0.0,
        )
        now = time.monotonic()
        if full_at > now:
            heapq.heappush(self._resting, (full_at, device_id))
        else:
            self._drop(device_id)
        while self._resting and self._resting[0][0] <= now:
            _, resting = heapq.heappop(self._resting)
            if resting not in connected:
                self._drop(resting)

    def _drop(self, device_id: str) -> None:
        self._send.pop(device_id, None)
        self._frames.pop(device_id, None)
