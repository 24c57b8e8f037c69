"""Accounts: users, what others see of them, and their devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    display_name: str | None
    password_hash: str
    suspended: bool = False  # by an operator: log-ins are refused


@dataclass(frozen=True, slots=True)
class Profile:
    """What other users see of an account."""

    user_id: str
    username: str
    display_name: str | None
    suspended: bool = False  # by an operator


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    user_id: str
    name: str | None
    created_at_ms: int
    expires_at_ms: int = 0  # when its token stops working (0: not read)
    suspended: bool = False  # its user is suspended (read by `device_by_token`, `live_device`)


class AccountStore(Protocol):
    async def create_user(
        self, user_id: str, username: str, password_hash: str, display_name: str | None
    ) -> None:
        """Create a user; raises `UsernameTaken` if the name is in use."""

    async def user_by_username(self, username: str) -> User | None:
        """The user with this username, if any."""

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """The subset of `user_ids` that are accounts."""

    async def visible_profiles(self, viewer_id: str, user_ids: Sequence[str]) -> list[Profile]:
        """The profiles among `user_ids` that `viewer_id` may see, in no order: their own, a
        co-member's of a group, and, unless a block stands between the two, a friend's (or
        a friend request's either way) or the other member's of a direct channel."""

    async def set_display_name(self, user_id: str, display_name: str | None) -> Profile | None:
        """Set (or clear, with None) the user's display name; their profile, None if no user."""

    async def create_device(
        self,
        device_id: str,
        user_id: str,
        name: str | None,
        token_hash: bytes,
        expires_at_ms: int,
        max_devices: int,
    ) -> tuple[Device, list[str]]:
        """Register a new device (one login) with its token's hash. If the user already has
        `max_devices` live ones, the soonest to expire (least recently logged in or renewed)
        are revoked to make room, atomically; returns the device and the ids revoked."""

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """The live device holding this token: not revoked, not expired; `suspended` says
        whether its user is."""

    async def live_device(self, device_id: str) -> Device | None:
        """The device if live (not revoked, not expired), with its current expiry; `suspended`
        says whether its user is."""

    async def set_suspended(self, user_id: str, suspended: bool) -> bool:
        """Suspend the user, or lift their suspension (idempotent); False if no such user."""

    async def devices(self, user_id: str) -> list[Device]:
        """The user's devices not revoked, expired ones included, oldest first."""

    async def renew_token(self, device_id: str, token_hash: bytes, expires_at_ms: int) -> bool:
        """Give a live device a new token (the old one stops working); False if not live."""

    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token; idempotent."""

    async def revoke_devices(self, user_id: str) -> list[str]:
        """Revoke every live device of the user; the ids revoked."""
