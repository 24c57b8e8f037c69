"""Each device's acknowledged message id per channel."""

from __future__ import annotations

from typing import Protocol


class CursorStore(Protocol):
    async def cursors(self, device_id: str) -> dict[str, int]:
        """The device's acknowledged message id per channel."""

    async def advance(self, device_id: str, channel_id: str, message_id: int) -> None:
        """Move the device's cursor forward to `message_id`; never backwards, and only while
        the device's user is a member of the channel (otherwise nothing is written)."""
