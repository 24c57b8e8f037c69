"""Each user's read marker per channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MarkerMove:
    moved: bool  # the marker went forward (False: it was there or further already)
    shared: bool  # the user shares read receipts


class ReadStore(Protocol):
    async def markers(self, user_id: str) -> dict[str, int]:
        """The user's read marker per channel (channels never read are absent)."""

    async def advance(self, user_id: str, channel_id: str, message_id: int) -> MarkerMove | None:
        """Move the user's marker in the channel forward to `message_id` (never back), in O(1)
        writes; says whether it moved and whether the user shares receipts. None, with nothing
        written, if the user is not a member of the channel when the write is made."""

    async def receipts(self, channel_id: str) -> dict[str, int]:
        """The markers of the channel's members who share them."""

    async def read_upto(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The markers of these (user, channel) pairs, for those that have one."""

    async def shares_receipts(self, user_id: str) -> bool:
        """Whether the user shares read receipts (on unless turned off)."""

    async def share_receipts(self, user_id: str, shared: bool) -> None:
        """Turn the user's read receipts on or off."""
