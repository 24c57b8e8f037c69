"""A member's notification settings per channel: the level (all, mentions, none) and a mute
until a time. Pushes (processors/notifier.py) and badges (the clients, from `GET /v1/channels`
and `mention_count`) follow them: at level `mentions`, or while muted, only a mention
notifies; at `none`, no push at all. A change reaches the user's other devices live as a
`notifications` frame; a device that connects later reads them in `GET /v1/channels`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.errors import ApiError, invalid, not_member, require_body, require_id
from gateway.services import Services
from schemas.http import ChannelNotifications
from schemas.ids import iso_ms
from storage.protocols import Device, Notifications

# A mute ends within this many years: far enough for "until I turn it back on", near enough
# for every store's timestamps.
_MUTE_YEARS_MAX = 100


def notifications_body(channel_id: str, settings: Notifications) -> dict[str, Any]:
    """The settings as `GET /v1/channels`, the `PUT` and the `notifications` frame show them."""
    muted = settings.muted_until_ms
    return {
        "channel_id": channel_id,
        "level": settings.level,
        "muted_until": None if muted is None else iso_ms(muted),
        "version": settings.version,
    }


def _muted_until_ms(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid("muted_until must be an ISO 8601 time with its offset, or null") from None
    if at.tzinfo is None:
        raise invalid("muted_until must say its offset (Z or +hh:mm)")
    if not 1970 <= at.year <= datetime.now().year + _MUTE_YEARS_MAX:
        raise invalid(f"muted_until must be within {_MUTE_YEARS_MAX} years")
    return int(at.timestamp() * 1000)


async def set_notifications(
    services: Services, caller: Device, channel_id: object, body: dict[str, Any]
) -> dict[str, Any]:
    """Set the caller's notification settings for a channel they are a member of (both
    fields: `level`, and `muted_until`, null to unmute), then tell every device of theirs
    (`notifications`, once the broker holds it). Returns the settings as stored, with their
    `version` (one more than the last change's: frames of two changes made at once may arrive
    in either order, and a device keeps the higher). Each change
    takes one from the device's send bucket (`rate_limited` beyond it)."""
    channel_id = require_id(channel_id, "channel_id")
    wanted = require_body(ChannelNotifications, body)
    settings = Notifications(wanted.level, _muted_until_ms(wanted.muted_until))
    # Each change is a record to every device of the user: it takes from the device's send
    # bucket, as a message does.
    if not services.registry.limits.send(caller.device_id).take():
        raise ApiError(429, "rate_limited", "too many changes; slow down")
    stored = await services.stores.channels.set_notifications(channel_id, caller.user_id, settings)
    if stored is None:
        raise not_member()
    shown = notifications_body(channel_id, stored)
    await services.publisher.to_user(caller.user_id, channel_id, {"type": "notifications", **shown})
    return shown
