"""Per-device rate limits: token buckets for sends and for every other frame (SPEC §4).

A device's buckets outlive its sockets on this gateway until they would be full again, so
reconnecting does not refill them: a device that spent its burst and reconnects at once finds
it still spent.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Container
from dataclasses import dataclass


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

    def wait_s(self, cost: float = 1.0) -> float:
        """How long until `cost` could be taken."""
        return max(0.0, (cost - self._tokens) / self._rate)

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


class Throttle:
    """`limit` attempts per `window_s` for each key (an account, a client address): a bucket per
    key used lately, at most `max_keys` of them (the least recently used go first), so a flood
    of new keys cannot grow the gateway's memory."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._rate = limit / window_s
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def attempt(self, key: str) -> float:
        """Take one attempt for `key`: 0 if allowed, else how many seconds until one is."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._limit)
            if len(self._buckets) >= self._max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket  # most recently used last
        if bucket.take():
            return 0.0
        return bucket.wait_s()


@dataclass
class AccountThrottles:
    """Sign-ups per client address; log-ins per account and per client address."""

    signups_per_address: Throttle
    logins_per_account: Throttle
    logins_per_address: Throttle
