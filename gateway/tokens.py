"""Device tokens and password hashes.

A token is 32 random bytes, URL-safe; only its SHA-256 is stored, so a leaked database does not
leak live tokens. Passwords are hashed with argon2id in a worker thread so hashing never blocks
the event loop. The cost is a setting (RFC 9106's low-memory profile by default); a hash keeps
the parameters it was made with, so changing them never locks anyone out.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class HashingBusy(Exception):
    """More password hashes wait than allowed: the caller is refused, not queued."""


class Passwords:
    def __init__(
        self,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        max_concurrent: int = 2,
        max_waiting: int = 64,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the username is unknown, so both failures take the same time.
        self._dummy_hash = self._hasher.hash("parley-dummy-password")
        # Bounded: a flood of log-ins takes `max_concurrent` cores at most, never the event
        # loop's threads or the whole machine, and waits in a queue of bounded length.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._max_waiting = max_waiting
        self._waiting = 0

    async def _run(self, work: Callable[[], T]) -> T:
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise HashingBusy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(work)
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def verify() -> bool:
            try:
                return (
                    self._hasher.verify(password_hash or self._dummy_hash, password)
                    and password_hash is not None
                )
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(verify)
