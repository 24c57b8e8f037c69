"""Search over the caller's history (SPEC §7): the messages of their channels that hold every
token of a query, newest first, each with its channel and a snippet.

Only what the caller may see: channels they are a member of now, and in each the messages
history shows them (storage/visibility.py: all of it, or from their latest join when the group
hides its past from later members). Leaving a group deletes its membership, so a user who left
sees nothing of it (not even what they saw while in it).
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.commands.channels import require_member
from gateway.errors import ApiError, invalid, rate_limited, require_id
from gateway.services import Services
from schemas.ids import parse_id
from schemas.limits import (
    MAX_SEARCH_QUERY_CHARS,
    SEARCH_LIMIT_DEFAULT,
    SEARCH_LIMIT_MAX,
)
from schemas.message import Message
from storage.protocols import Channel, Device, SearchBusy, SearchScope, SearchTooCostly
from storage.search import tokeniser
from storage.search.tokens import query_tokens
from storage.visibility import visible_from

_LIMIT = re.compile(r"[0-9]{1,3}")  # ASCII digits only
_TOO_LONG = "the search took too long: add words or give a channel_id"
_BUSY = "the server is busy with other searches; try again shortly"
# Past the deadline, what the index and the snippets do not stop themselves is cancelled.
_BACKSTOP_S = 0.5


async def search(services: Services, caller: Device, query: dict[str, str]) -> dict[str, Any]:
    """One page of matches: `{"results": [{message, channel, snippet}], "next_before"}`.
    A valid query is refused with `rate_limited` beyond the caller's share
    (gateway/search_gate.py)."""
    q = query.get("q")
    if q is None or not 1 <= len(q) <= MAX_SEARCH_QUERY_CHARS:
        raise invalid(f"q must be 1-{MAX_SEARCH_QUERY_CHARS} characters")
    tokens = query_tokens(q)  # of its first MAX_SEARCH_QUERY_CHARS normalised characters
    if not tokens:
        raise invalid("q has nothing to search for: no letters, digits or symbols")
    limit = _limit(query.get("limit"))
    before: int | None = None
    if "before" in query:
        before = parse_id(query["before"])
        if before is None:
            raise invalid("before must be a message id")
    channel_id = require_id(query["channel_id"], "channel_id") if "channel_id" in query else None
    async with services.searches.admit(caller.user_id):
        budget = services.settings.search_deadline_s
        deadline = time.monotonic() + budget
        try:
            # The index and the snippets stop at the deadline themselves (the index's
            # statement cancelled by the server); this bounds the rest (the channels read
            # through the shared pool) should it be slower.
            async with asyncio.timeout(budget + _BACKSTOP_S):
                return await _search(
                    services, caller, _Query(q, tokens, deadline), channel_id, before, limit
                )
        except (TimeoutError, SearchTooCostly):
            metrics.SEARCHES_REFUSED.labels("too_broad").inc()
            raise ApiError(422, "too_broad", _TOO_LONG) from None
        except SearchBusy:
            metrics.SEARCHES_REFUSED.labels("pool").inc()
            raise rate_limited(_BUSY, 1) from None


@dataclass(frozen=True)
class _Query:
    text: str
    tokens: list[str]
    deadline: float  # time.monotonic()


async def _search(
    services: Services,
    caller: Device,
    query: _Query,
    channel_id: str | None,
    before: int | None,
    limit: int,
) -> dict[str, Any]:
    channels = services.stores.channels
    if channel_id is not None:
        membership = await require_member(channels, channel_id, caller.user_id)
        scopes = [SearchScope(channel_id, visible_from(membership))]
    else:
        scopes = [
            SearchScope(m.channel_id, visible_from(m))
            for m in await channels.memberships(caller.user_id)
        ]
    page = await services.stores.search.search(
        query.text, scopes, before=before, limit=limit, deadline=query.deadline
    )
    found: dict[str, Channel | None] = {}
    for message in page.messages:
        if message.channel_id not in found:
            found[message.channel_id] = await channels.channel(message.channel_id)
    # Up to 100 snippets, each of bounded work (storage/search/snippets.py), cut in the
    # search's own process so that the sockets this gateway's loop serves are not held (a
    # thread would take the loop's GIL), and given up at the deadline.
    try:
        snippets = await tokeniser.snip(
            [m.text for m in page.messages], query.tokens, query.deadline
        )
    except BrokenProcessPool:
        metrics.SEARCHES_REFUSED.labels("busy").inc()
        raise rate_limited(_BUSY, 1) from None
    results = [
        _result(m, found[m.channel_id], [{"text": t, "match": match} for t, match in parts])
        for m, parts in zip(page.messages, snippets, strict=True)
    ]
    next_before = str(page.messages[-1].message_id) if page.more and page.messages else None
    return {"results": results, "next_before": next_before}


def _result(
    message: Message, channel: Channel | None, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "message": message.wire(),
        "channel": {
            "channel_id": message.channel_id,
            "type": channel.type if channel is not None else None,
            "name": channel.name if channel is not None else None,
        },
        "snippet": parts,
    }


def _limit(raw: str | None) -> int:
    if raw is None:
        return SEARCH_LIMIT_DEFAULT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= SEARCH_LIMIT_MAX:
        raise invalid(f"limit must be 1-{SEARCH_LIMIT_MAX}")
    return int(raw)
