"""Rate limits, per gateway process: a device's token buckets for sends and for every other
frame (SPEC §4), and the throttles on sign-ups and log-ins (SPEC §2).

A device's buckets outlive its sockets on this gateway until they would be full again, so
reconnecting does not refill them: a device that spent its burst and reconnects at once finds
it still spent.
"""

from __future__ import annotations

import heapq
import ipaddress
import time
from collections.abc import Container, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar


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
    """`limit` attempts per `window_s` for each key (a client address): a bucket per key used
    lately, at most `max_keys` of them (the least recently used go first), so a flood of new
    keys cannot grow the gateway's memory."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._rate = limit / window_s
        self._buckets: _Recent[str, TokenBucket] = _Recent(max_keys)

    def attempt(self, key: str) -> float:
        """Take one attempt for `key`: 0 if allowed, else how many seconds until one is."""
        bucket = self._buckets.get(key) or self._buckets.put(
            key, TokenBucket(self._rate, self._limit)
        )
        if bucket.take():
            return 0.0
        return bucket.wait_s()


@dataclass(slots=True)
class _Pair:
    """An (account, address)'s attempts, and the turn it was given at the account, if any."""

    bucket: TokenBucket
    turn: float | None = None  # when (monotonic) its turn at the account comes


class LoginThrottle:
    """Log-in attempts per (account, address) and per account, from every address together.

    An (account, address) has `per_pair` attempts per `window_s`, and a log-in that succeeds
    gives them all back. The account has `per_account` attempts per `window_s` at once, then
    one every `window_s / per_account`, and those are taken in turn: an address refused at the
    account's ceiling is given the next free turn (its wait, as Retry-After) and is let in when
    it comes back at that time. An address holds one turn at a time, and asking again before
    it comes costs nothing, so a stranger hammering an account can slow its owner by a turn
    per address it attacks from, never lock them out.

    The account's schedule is a generic cell rate algorithm: `_next[account]` is when the next
    attempt would be due if attempts came evenly; one is allowed while that is at most
    `window_s - interval` ahead. At most `max_keys` accounts and pairs are held (the least
    recently used go first)."""

    def __init__(
        self, per_pair: int, per_account: int, window_s: float, max_keys: int = 100_000
    ) -> None:
        self._per_pair, self._pair_rate = per_pair, per_pair / window_s
        self._interval = window_s / per_account
        self._ahead = window_s - self._interval  # how far ahead the schedule may run
        self._turn_kept_s = window_s  # a turn not taken by then is forgotten
        self._pairs: _Recent[tuple[str, str], _Pair] = _Recent(max_keys)
        self._next: _Recent[str, float] = _Recent(max_keys)

    def attempt(self, account: str, address: str) -> float:
        """One log-in attempt on `account` from `address`: 0 if allowed, else how many seconds
        until one is."""
        now = time.monotonic()
        key = (account, address)
        pair = self._pairs.get(key) or self._pairs.put(
            key, _Pair(TokenBucket(self._pair_rate, self._per_pair))
        )
        if pair.turn is not None and now < pair.turn:
            return pair.turn - now  # asked again before its turn: not counted
        if not pair.bucket.take():
            return pair.bucket.wait_s()
        if pair.turn is not None:
            kept = now <= pair.turn + self._turn_kept_s
            pair.turn = None
            if kept:
                return 0.0  # its turn, booked on the account's schedule when it was given
        scheduled = self._next.get(account)
        due = now if scheduled is None else max(scheduled, now)
        self._next.put(account, due + self._interval)
        if due - self._ahead <= now:
            return 0.0
        pair.turn = due - self._ahead  # the next free turn, booked now
        return pair.turn - now

    def succeeded(self, account: str, address: str) -> None:
        """A log-in on `account` from `address` succeeded: that pair's attempts are given back."""
        self._pairs.pop((account, address))


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """A map of at most `max_keys` entries; adding one beyond drops the least recently used."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._items.pop(key, None)
        if value is not None:
            self._items[key] = value  # most recently used last
        return value

    def put(self, key: K, value: V) -> V:
        if self._items.pop(key, None) is None and len(self._items) >= self._max_keys:
            del self._items[next(iter(self._items))]
        self._items[key] = value
        return value

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


def address_key(address: str) -> str:
    """What a client address is throttled as: an IPv6 address by its /64, the block one
    subscriber is usually given (each of its addresses is theirs to use); an IPv4 address, or
    one mapped into IPv6, as itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class AccountThrottles:
    """Sign-ups per client address; log-ins per client address, and per account (see
    `LoginThrottle`)."""

    signups_per_address: Throttle
    logins_per_address: Throttle
    logins: LoginThrottle


class UserBuckets:
    """A token bucket (`rate_per_s`, `burst`) per user who used it lately, at most `max_users`
    of them (the least recently used go first: a bucket dropped for room had time to refill
    since), so a flood of users cannot grow the gateway's memory."""

    def __init__(self, rate_per_s: float, burst: int, max_users: int = 100_000) -> None:
        self._rate, self._burst = rate_per_s, burst
        self._max_users = max_users
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, user_id: str, cost: int) -> float:
        """Take `cost` tokens (at most the whole bucket) from the user's bucket: 0 if taken,
        else how many seconds until they could be."""
        bucket = self._buckets.pop(user_id, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst)
            if len(self._buckets) >= self._max_users:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[user_id] = bucket  # most recently used last
        cost = min(cost, self._burst)
        if bucket.take(cost):
            return 0.0
        return bucket.wait_s(cost)


class ExportGate:
    """Who may export their data now: per user one export at a time and `per_hour` an hour
    (a token bucket), per gateway at most `concurrency` at once. An export streams for as long
    as its reader reads, so it holds its place until its stream ends (`leave`)."""

    def __init__(self, per_hour: int, concurrency: int) -> None:
        self._buckets = UserBuckets(per_hour / 3600, per_hour)
        self._concurrency = concurrency
        self._running: set[str] = set()

    def enter(self, user_id: str) -> tuple[str, float] | None:
        """Take a place for the user's export: None if taken, else why not and how long (in
        seconds) to wait; `leave` gives a taken place back."""
        if user_id in self._running:
            return "one export at a time: wait for the one in progress", 1.0
        if len(self._running) >= self._concurrency:
            return "the server is busy with other exports; try again shortly", 1.0
        wait_s = self._buckets.take(user_id, 1)
        if wait_s:
            return "too many exports; try again later", wait_s
        self._running.add(user_id)
        return None

    def leave(self, user_id: str) -> None:
        self._running.discard(user_id)
