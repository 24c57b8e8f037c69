"""Push endpoints, and the pushes owed to users with no open socket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PushEndpoint:
    """Where a push provider reaches one device: a platform name and that platform's handle."""

    user_id: str
    device_id: str
    platform: str
    token: str


@dataclass(frozen=True)
class PushCandidate:
    """A message a user with no open socket was not connected to receive."""

    user_id: str
    channel_id: str
    message_id: int
    active_floor: int  # the lowest message id of the instant the user was last active


class PushStore(Protocol):
    async def set_endpoint(self, endpoint: PushEndpoint) -> None:
        """Register or replace the device's endpoint."""

    async def remove_endpoint(self, device_id: str) -> bool:
        """Forget the device's endpoint; False when it had none."""

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, list[PushEndpoint]]:
        """The endpoints of the users' live (not revoked) devices, for users that have any."""

    async def claim(
        self, candidates: Sequence[PushCandidate], window_ms: int
    ) -> list[PushCandidate]:
        """The candidates that get a push; at most one per (user, channel) in a call.

        A candidate is claimed when its channel has no claim for the user yet, or the last
        claim is older than the candidate and either `window_ms` older or older than the user's
        last activity. A message is claimed once, whoever asks and however often; its claim is
        returned again, for the same push to be sent again, until it is `finish`ed."""

    async def finish(self, claims: Sequence[PushCandidate]) -> None:
        """Mark claims done: their pushes were delivered or given up on."""
