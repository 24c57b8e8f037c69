"""Export of a user's own data (`GET /v1/users/me/export`, docs/protocol.md, Export): their
account, devices, settings, friends and blocks, channels, and the messages they sent, as NDJSON
(one JSON object a line, each with its `type`), streamed as it is read.

Memory stays bounded: the messages are read a page at a time from the message store
(`MessageStore.sent_by`, on every backend), and each page is written before the next is read;
a reader that reads slowly holds the stream back, not the gateway's memory. Nothing secret
leaves: no password hash, no token hashes, no push tokens; a deleted message is exported as a
tombstone without its text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from gateway.commands.accounts import profile
from gateway.commands.channels import channel_body
from gateway.commands.settings import account_settings
from gateway.errors import rate_limited
from gateway.services import Services
from schemas.ids import iso_ms, now_ms
from storage.protocols import Device

EXPORT_VERSION = 1
MAX_MESSAGE_ID = 2**63 - 1  # past every message id of a channel


@dataclass(frozen=True)
class Export:
    lines: AsyncIterator[bytes]
    # Gives the export's place back: the entry point calls it once the answer ended, however
    # it ended (read to the end, cut by the client, failed), started or not.
    done: Callable[[], None]


async def export_data(services: Services, caller: Device) -> Export:
    """The caller's data as NDJSON lines, or `rate_limited` (per user one export at a time and
    `exports_per_hour`; per gateway `export_concurrency` at once). The place is taken here,
    before the answer starts."""
    refused = services.exports.enter(caller.user_id)
    if refused is not None:
        raise rate_limited(*refused)
    return Export(_lines(services, caller), partial(services.exports.leave, caller.user_id))


def _line(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body) + b"\n"


async def _lines(services: Services, caller: Device) -> AsyncIterator[bytes]:
    stores, user_id = services.stores, caller.user_id
    yield _line({"type": "export", "v": EXPORT_VERSION, "exported_at": iso_ms(now_ms())})
    yield _line({"type": "account", **await profile(services, caller, user_id)})
    yield _line({"type": "settings", **await account_settings(services, caller)})
    for device in await stores.accounts.devices(user_id):
        yield _line(
            {
                "type": "device",
                "device_id": device.device_id,
                "name": device.name,
                "created_at": iso_ms(device.created_at_ms),
                "expires_at": iso_ms(device.expires_at_ms),
            }
        )
    endpoints = await stores.push.endpoints([user_id])
    for endpoint in endpoints.get(user_id, []):  # the provider's handle is the device's
        yield _line(
            {
                "type": "push_endpoint",
                "device_id": endpoint.device_id,
                "platform": endpoint.platform,
            }
        )
    for edge in await stores.friends.list(user_id):
        yield _line(
            {
                "type": "friend",
                "user_id": edge.user_id,
                "username": edge.username,
                "display_name": edge.display_name,
                "status": edge.state,
            }
        )
    for blocked in await stores.friends.blocked(user_id):
        yield _line({"type": "block", "user_id": blocked})
    channels = await stores.channels.channels_of(user_id)
    joined = {m.channel_id: m.joined_at_ms for m in await stores.channels.memberships(user_id)}
    markers = await stores.reads.markers(user_id)
    for channel in channels:
        marker = markers.get(channel.channel_id)
        body = channel_body(channel)
        body.pop("last_message_id")
        yield _line(
            {
                "type": "channel",
                "channel_type": body.pop("type"),  # `type` names the line
                **body,
                "joined_at": iso_ms(joined.get(channel.channel_id, 0)),
                "read_message_id": None if marker is None else str(marker),
            }
        )
    current = {c.channel_id for c in channels}
    left = [c async for c in _sent_in(services, user_id) if c not in current]
    for channel_id in left:
        found = await stores.channels.channel(channel_id)
        yield _line(
            {
                "type": "channel",
                "channel_id": channel_id,
                "channel_type": None if found is None else found.type,
                "left": True,  # no longer a member: nothing of the channel as it is now
            }
        )
    count = 0
    page_size = services.settings.export_page_size
    for channel_id in sorted([*current, *left]):
        after = 0
        while page := await stores.messages.sent_by(
            channel_id, user_id, after=after, limit=page_size
        ):
            yield b"".join(_line({"type": "message", **m.wire()}) for m in page)
            count += len(page)
            after = page[-1].message_id
    # The last line: an export without it was cut short.
    yield _line({"type": "end", "messages": count})


async def _sent_in(services: Services, user_id: str) -> AsyncIterator[str]:
    """Every channel the search index holds a message of `user_id`'s in, those they have
    left among them, by id: one seek of its index by sender per channel
    (`search_entries_sender`), skipping each channel's messages."""
    after: tuple[str, int] | None = None
    while found := await services.stores.search.sent_by(user_id, after=after, limit=1):
        channel_id = found[0][0]
        yield channel_id
        after = (channel_id, MAX_MESSAGE_ID)
