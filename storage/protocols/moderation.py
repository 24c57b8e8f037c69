"""Moderation: members' reports of messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ReportReason = Literal["spam", "harassment", "hate", "violence", "illegal", "other"]


@dataclass(frozen=True, slots=True)
class Report:
    """A member's report of a message, with a copy of the text they reported."""

    report_id: str
    channel_id: str
    message_id: int
    sender_id: str
    reporter_id: str
    reason: ReportReason
    note: str | None
    text: str
    created_at_ms: int


class ReportStore(Protocol):
    async def add_report(self, report: Report) -> tuple[Report, bool]:
        """Store a report, once per (reporter, channel, message): the report as stored and
        whether this call stored it (False: the reporter had reported the message already,
        and the earlier report is returned unchanged)."""

    async def channel_reports(
        self, channel_id: str, *, from_id: int, before: str | None, limit: int
    ) -> list[Report]:
        """A channel's reports of messages with ids from `from_id` on, newest report first,
        with report ids below `before` if given."""

    async def reports(self, *, before: str | None, limit: int) -> list[Report]:
        """Every report, newest first, with ids below `before` if given."""
