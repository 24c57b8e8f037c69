"""The operator's commands (`/v1/admin/...`): list reports, suspend and unsuspend a user,
delete a user's messages in bulk. The caller is the operator, the holder of the admin token
(`gateway/http_api.py` checks it); every command records what it did on the audit topic
(`admin.action`) once it took effect, before it answers."""

from __future__ import annotations

import logging

from gateway.commands.messages import publish_change
from gateway.commands.moderation import page_query
from gateway.errors import ApiError, invalid, not_found, require_id
from gateway.services import Services
from schemas.codes import SUSPENDED_REASON, CloseCode
from schemas.events import AdminAction, AdminActionV1, MessageChangeV1
from schemas.ids import now_ms, parse_id
from schemas.limits import BULK_DELETE_LIMIT_MAX
from storage.protocols import Report

OPERATOR = "operator"  # the sender and device of the operator's deletes
BULK_DELETE_LIMIT_DEFAULT = 100

log = logging.getLogger("parley.admin")


async def list_reports(services: Services, request_id: str, query: dict[str, str]) -> list[Report]:
    """Every report, newest first: a page of `limit` (1-100, 50 by default) with ids below
    `before` if given."""
    before, limit = page_query(query)
    found = await services.stores.reports.reports(before=before, limit=limit)
    await _audit(services, request_id, "reports.list", None, {"reports": len(found)})
    return found


async def suspend(services: Services, request_id: str, user_id: object) -> None:
    """Suspend a user: their tokens are refused (403 `suspended`), log-ins too, their sockets
    close with 4003 on every gateway (here first, then through the inbox), their devices'
    push endpoints go, and their profile says `suspended`. Idempotent."""
    user_id = require_id(user_id, "user_id")
    if not await services.stores.accounts.set_suspended(user_id, True):
        raise not_found("user")
    for connection in services.registry.of_user(user_id):
        connection.kill(CloseCode.SUSPENDED, SUSPENDED_REASON)
    for device in await services.stores.accounts.devices(user_id):
        await services.stores.push.remove_endpoint(device.device_id)
    # After the commit: a hello that read the user before it reads them again once its
    # socket is registered (gateway/connection.py `_still_live`), as for a revocation.
    await services.publisher.user_suspended(user_id)  # retried
    await _audit(services, request_id, "user.suspend", user_id, {})


async def unsuspend(services: Services, request_id: str, user_id: object) -> None:
    """Lift a user's suspension: they may log in again (their devices' tokens work again
    until they expire). Idempotent."""
    user_id = require_id(user_id, "user_id")
    if not await services.stores.accounts.set_suspended(user_id, False):
        raise not_found("user")
    await _audit(services, request_id, "user.unsuspend", user_id, {})


async def delete_messages(
    services: Services, request_id: str, user_id: object, query: dict[str, str]
) -> tuple[int, str | None]:
    """Delete up to `limit` (1-500, 100 by default) of a user's messages, in every channel,
    through the normal delete path: a `message.change` delete each (sender and device
    `operator`), so the store, the search index, the stored topic's forgetting and clients
    all follow. The messages are those of the search index (every stored message, within the
    indexer's lag), in (channel, id) order after `after`; returns how many were queued and the
    cursor to pass as `after` for the next page (None when this was the last)."""
    user_id = require_id(user_id, "user_id")
    after, limit = _bulk_query(query)
    if not await services.stores.accounts.existing_users([user_id]):
        raise not_found("user")
    found = await services.stores.search.sent_by(user_id, after=after, limit=limit)
    acks = []
    for channel_id, message_id in found:
        event = MessageChangeV1(
            kind="delete",
            channel_id=channel_id,
            target_id=str(message_id),
            sender_id=OPERATOR,
            sender_device_id=OPERATOR,
            # One key per message: a page asked again deletes nothing twice.
            client_msg_id=f"delete:{channel_id}:{message_id}",
            sent_at_ms=now_ms(),
        )
        acks.append(await publish_change(services, event))
    try:
        # The broker holds them: they will be stored (or it kept silent too long: ask again).
        await services.publisher.acked(*acks)
    except Exception:
        log.exception("queuing an operator's deletes failed")
        raise ApiError(503, "internal", "could not queue the deletes; ask again") from None
    cursor = f"{found[-1][0]}:{found[-1][1]}" if len(found) == limit else None
    detail: dict[str, int | str | bool] = {"deleted": len(found), "more": cursor is not None}
    await _audit(services, request_id, "user.messages.delete", user_id, detail)
    return len(found), cursor


def _bulk_query(query: dict[str, str]) -> tuple[tuple[str, int] | None, int]:
    raw = query.get("limit")
    limit = BULK_DELETE_LIMIT_DEFAULT
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not (
            1 <= int(raw) <= BULK_DELETE_LIMIT_MAX
        ):
            raise invalid(f"limit must be 1-{BULK_DELETE_LIMIT_MAX}")
        limit = int(raw)
    cursor = query.get("after")
    if cursor is None:
        return None, limit
    channel_id, _, message_id = cursor.partition(":")
    parsed = parse_id(message_id)
    if parse_id(channel_id) is None or parsed is None:
        raise invalid("after must be the cursor a previous page gave")
    return (channel_id, parsed), limit


async def _audit(
    services: Services,
    request_id: str,
    action: AdminAction,
    target: str | None,
    detail: dict[str, int | str | bool],
) -> None:
    event = AdminActionV1(
        action=action, target=target, at_ms=now_ms(), request_id=request_id, detail=detail
    )
    try:
        await services.publisher.admin_action(event)
    except Exception:
        # Done but not recorded: the operator learns it, and may ask again (idempotent).
        log.exception("recording an operator's action failed: %s", event)
        raise ApiError(503, "internal", "done, but not recorded on the audit topic") from None
