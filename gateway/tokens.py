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

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the username is unknown, so both failures take the same time.
        self._dummy_hash = self._hasher.hash("parley-dummy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def verify() -> bool:
            try:
                return (
                    self._hasher.verify(password_hash or self._dummy_hash, password)
                    and password_hash is not None
                )
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)
