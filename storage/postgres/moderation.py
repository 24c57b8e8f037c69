"""Reports in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from storage.postgres.pool import Pool, connection
from storage.protocols.moderation import Report, ReportReason

_COLUMNS = (
    "report_id, channel_id, message_id, sender_id, reporter_id, reason, note, text,"
    " (extract(epoch FROM created_at) * 1000)::bigint"
)
_NO_ID = 2**63 - 1  # above every id: the first page


class PostgresReportStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add_report(self, report: Report) -> tuple[Report, bool]:
        """Store a report, once per (reporter, channel, message): the report as stored and
        whether this call stored it."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "INSERT INTO reports (report_id, channel_id, message_id, sender_id, reporter_id,"
                " reason, note, text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (reporter_id, channel_id, message_id) DO NOTHING RETURNING {_COLUMNS}",
                (
                    int(report.report_id),
                    report.channel_id,
                    report.message_id,
                    report.sender_id,
                    report.reporter_id,
                    report.reason,
                    report.note,
                    report.text,
                ),
            )
            row = await cur.fetchone()
            if row is not None:
                return _report(row), True
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM reports"
                " WHERE reporter_id = %s AND channel_id = %s AND message_id = %s",
                (report.reporter_id, report.channel_id, report.message_id),
            )
            row = await cur.fetchone()
        assert row is not None  # reports are never deleted
        return _report(row), False

    async def channel_reports(
        self, channel_id: str, *, from_id: int, before: str | None, limit: int
    ) -> list[Report]:
        """A channel's reports of messages with ids from `from_id` on, newest report first,
        with report ids below `before` if given."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM reports WHERE channel_id = %s AND report_id < %s"
                " AND message_id >= %s ORDER BY report_id DESC LIMIT %s",
                (channel_id, _below(before), from_id, limit),
            )
            return [_report(row) for row in await cur.fetchall()]

    async def reports(self, *, before: str | None, limit: int) -> list[Report]:
        """Every report, newest first, with ids below `before` if given."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM reports WHERE report_id < %s"
                " ORDER BY report_id DESC LIMIT %s",
                (_below(before), limit),
            )
            return [_report(row) for row in await cur.fetchall()]


def _below(before: str | None) -> int:
    return _NO_ID if before is None else int(before)


def _report(row: Sequence[object]) -> Report:
    return Report(
        report_id=str(row[0]),
        channel_id=str(row[1]),
        message_id=int(str(row[2])),
        sender_id=str(row[3]),
        reporter_id=str(row[4]),
        reason=cast(ReportReason, str(row[5])),
        note=None if row[6] is None else str(row[6]),
        text=str(row[7]),
        created_at_ms=int(str(row[8])),
    )
