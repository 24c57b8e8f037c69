"""Each user's last decided presence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Presence:
    user_id: str
    status: Literal["online", "offline"]
    last_active_ms: int
    connected: bool = False  # a socket is open (status waits out the timeout, this does not)


class PresenceStore(Protocol):
    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        """The last decided presence of each user that has one."""

    async def save(self, changes: Sequence[tuple[Presence, int]]) -> None:
        """Record presence changes, each with the user's presence partition."""

    async def online_in(self, partitions: Sequence[int]) -> list[Presence]:
        """Users recorded online whose presence partition is one of `partitions`."""
