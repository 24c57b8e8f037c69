"""Moderation by members: report a message (to the group's owners and admins, and to the
operator's queue), and read a group's reports as its owner or admin."""

from __future__ import annotations

from gateway.commands.channels import MANAGERS
from gateway.commands.messages import membership_of
from gateway.errors import ApiError, invalid, not_found, rate_limited, require_body, require_id
from gateway.services import Services
from schemas.http import NewReport
from schemas.ids import iso_ms, new_id, parse_id
from schemas.limits import REPORTS_LIMIT_MAX
from storage.protocols import Device, Report
from storage.visibility import visible_from

REPORTS_LIMIT_DEFAULT = 50


async def report(
    services: Services, caller: Device, channel_id: object, message_id: object, body: object
) -> tuple[Report, bool]:
    """Report a message of a channel the caller is a member of and could see: the report as
    stored, and whether this call made it (a reporter reports a message once; a repeat
    answers the first report). Someone else's living message only; rate limited per user."""
    channel_id = require_id(channel_id, "channel_id")
    target_id = int(require_id(message_id, "message_id"))
    wanted = require_body(NewReport, body)
    wait_s = services.reports.take(caller.user_id, 1)
    if wait_s > 0:
        raise rate_limited("too many reports; try again later", wait_s)
    # The store's word, not the cache's: a member removed a moment ago reports nothing.
    membership = await membership_of(services, caller, channel_id, fresh=True)
    target = await services.stores.messages.get(channel_id, target_id)
    if (
        target is None
        or target.kind != "message"
        or target.deleted
        or target_id < visible_from(membership)
    ):
        raise not_found("message")  # nor one the caller may not see (storage/visibility.py)
    if target.sender_id == caller.user_id:
        raise invalid("you cannot report your own message")
    return await services.stores.reports.add_report(
        Report(
            report_id=new_id(),
            channel_id=channel_id,
            message_id=target_id,
            sender_id=target.sender_id,
            reporter_id=caller.user_id,
            reason=wanted.reason,
            note=wanted.note,
            text=target.text,
            created_at_ms=0,  # the store's clock
        )
    )


async def channel_reports(
    services: Services, caller: Device, channel_id: object, query: dict[str, str]
) -> list[Report]:
    """A group's reports, newest first, for its owners and admins: a page of `limit` (1-100,
    50 by default) with ids below `before` if given; only reports of messages the caller may
    see (storage/visibility.py)."""
    channel_id = require_id(channel_id, "channel_id")
    before, limit = page_query(query)
    membership = await membership_of(services, caller, channel_id, fresh=True)
    if membership.role not in MANAGERS:
        raise ApiError(403, "forbidden", "only the group's owners and admins read its reports")
    return await services.stores.reports.channel_reports(
        channel_id, from_id=visible_from(membership), before=before, limit=limit
    )


def page_query(query: dict[str, str]) -> tuple[str | None, int]:
    """`before` (a report id) and `limit` (1-100, 50 by default) of a page of reports."""
    before = query.get("before")
    if before is not None and parse_id(before) is None:
        raise invalid("before must be an id: a decimal number")
    raw = query.get("limit")
    if raw is None:
        return before, REPORTS_LIMIT_DEFAULT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not (
        1 <= int(raw) <= REPORTS_LIMIT_MAX
    ):
        raise invalid(f"limit must be 1-{REPORTS_LIMIT_MAX}")
    return before, int(raw)


def report_body(report: Report, *, full: bool) -> dict[str, object]:
    """A report as the API shows it. `full`, to its reporter and to the operator: with the
    reporter and the copy of the reported text. Otherwise, to the group's owners and admins:
    without either (the reporter is not exposed to them, and the message itself, in the chat,
    shows what is left of it once edited or deleted)."""
    body: dict[str, object] = {
        "report_id": report.report_id,
        "channel_id": report.channel_id,
        "message_id": str(report.message_id),
        "sender_id": report.sender_id,
        "reason": report.reason,
        "note": report.note,
        "created_at": iso_ms(report.created_at_ms),
    }
    if full:
        body["reporter_id"] = report.reporter_id
        body["text"] = report.text
    return body
