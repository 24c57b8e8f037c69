"""Channels: direct and group conversations, their members, and their history."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import Any

from gateway.errors import (
    ApiError,
    blocked,
    invalid,
    not_found,
    not_member,
    rate_limited,
    require_body,
    require_id,
    require_name,
)
from gateway.services import Services
from schemas.http import GroupSettings, MemberRole, NewMember
from schemas.ids import MAX_ID, id_floor, iso_ms, new_id, now_ms, parse_id
from schemas.limits import (
    HISTORY_LIMIT_DEFAULT,
    HISTORY_LIMIT_MAX,
    MAX_GROUP_MEMBERS,
    UNREAD_COUNT_CAP,
)
from schemas.message import Message
from storage.protocols import (
    Channel,
    ChannelStore,
    Device,
    GroupFull,
    LastOwner,
    Membership,
    NotAGroup,
    NotAMember,
    UnknownUsers,
)
from storage.replies import quoted
from storage.visibility import visible_from


def channel_body(channel: Channel, last_message_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel_id": channel.channel_id,
        "type": channel.type,
        "members": channel.members,
    }
    if channel.type == "group":
        body["name"] = channel.name
        body["roles"] = channel.roles
    body["history_visible"] = channel.history_visible
    body["last_message_id"] = None if last_message_id is None else str(last_message_id)
    return body


async def memberships_changed(
    services: Services, channel_id: str | None, user_ids: list[str]
) -> None:
    """After a commit that changed the memberships of `user_ids` in `channel_id` (in every
    channel, if None): this gateway forgets them at once, so a removal or a block made here is
    refused here from the answer on; every other gateway when it reads the `inbox.membership`
    event (gateway/memberships.py). Returns once the broker holds the event."""
    services.memberships.invalidate(user_ids, channel_id)
    await services.publisher.memberships_changed(channel_id, user_ids)


async def publish_members(
    services: Services, channel_id: str, members: list[str], changed: list[str]
) -> None:
    """After a commit that changed the memberships of `changed` in a channel whose members are
    now `members`: the processors fan out later messages to the new list (`channel.members`),
    and the gateways drop what they cached of those memberships."""
    await asyncio.gather(
        services.publisher.members_changed(channel_id, members),
        memberships_changed(services, channel_id, changed),
    )


def group_full() -> ApiError:
    return ApiError(422, "group_full", f"a group has at most {MAX_GROUP_MEMBERS} members")


_WHY_NOT = {
    "friends": "only their friends may add them to groups",
    "nobody": "nobody may add them to groups",
}


async def _may_add(services: Services, caller: Device, user_ids: list[str]) -> None:
    """Refuse the whole request unless the caller may add every one of `user_ids` to a group:
    the caller's share of adds (one token per user), no block either way, and each user's
    choice of who may add them (`everyone`, `friends`, `nobody`). A refused add costs its
    tokens too, so that nobody learns others' choices faster than they could add them."""
    wait_s = services.group_adds.take(caller.user_id, len(user_ids))
    if wait_s:
        raise rate_limited("too many users added to groups; slow down", wait_s)
    if await services.stores.friends.blocked_between(caller.user_id, user_ids):
        raise blocked()
    refusing = await services.stores.friends.refusing_adds(caller.user_id, user_ids)
    if refusing:
        reasons = "; ".join(f"user {u}: {_WHY_NOT[refusing[u]]}" for u in sorted(refusing))
        raise ApiError(403, "not_allowed", f"not added, by their choice: {reasons}")


async def open_direct(services: Services, caller: Device, other: object) -> tuple[Channel, bool]:
    """The direct channel between the caller and `other` (created once per pair)."""
    other = require_id(other, "user_id")
    if other == caller.user_id:
        raise invalid("a direct channel needs another user")
    if await services.stores.friends.blocked_between(caller.user_id, [other]):
        raise blocked()
    try:
        channel, created = await services.stores.channels.get_or_create_direct(
            new_id(), caller.user_id, other
        )
    except UnknownUsers:
        raise not_found("user") from None
    if created:
        await memberships_changed(services, channel.channel_id, channel.members)
    return channel, created


async def create_group(
    services: Services,
    caller: Device,
    name: object,
    member_ids: object,
    history_visible: object = True,
) -> Channel:
    """A new group of the caller and `member_ids`, its past visible to members who join later
    unless `history_visible` is false."""
    name = require_name(name, "name", 100)
    visible = _require_bool(history_visible, "history_visible")
    if not isinstance(member_ids, list) or len(member_ids) > MAX_GROUP_MEMBERS:
        raise invalid(f"member_ids must be a list of at most {MAX_GROUP_MEMBERS} user ids")
    member_ids = [require_id(m, "member_ids[]") for m in member_ids]
    members = list(dict.fromkeys([caller.user_id, *member_ids]))
    if len(members) < 2:
        raise invalid("a group needs at least one other member")
    if len(members) > MAX_GROUP_MEMBERS:
        raise group_full()
    await _may_add(services, caller, members[1:])
    try:
        channel = await services.stores.channels.create_group(
            new_id(), name, members, MAX_GROUP_MEMBERS, visible
        )
    except GroupFull:
        raise group_full() from None
    except UnknownUsers:
        raise not_found("user") from None
    await publish_members(services, channel.channel_id, channel.members, channel.members)
    return channel


async def list_channels(services: Services, caller: Device) -> list[dict[str, Any]]:
    """The caller's channels, each with its newest message id, the caller's read marker,
    unread count and unread mentions of the caller, as far as the caller may see (storage/visibility.py: an id below what they
    may see reads as null); a direct channel the caller hid is left out until a newer message
    arrives."""
    stores = services.stores
    found = await stores.channels.channels_of(caller.user_id)
    last = await stores.messages.last_message_ids([c.channel_id for c in found])
    hidden = await stores.channels.hidden(caller.user_id)
    shown = [
        c
        for c in found
        if c.channel_id not in hidden or last.get(c.channel_id, 0) > hidden[c.channel_id]
    ]
    markers = await stores.reads.markers(caller.user_id)
    memberships = {m.channel_id: m for m in await stores.channels.memberships(caller.user_id)}
    # Left since the list was read: nothing of the channel is the caller's to see.
    lowest = {c.channel_id: _lowest(memberships.get(c.channel_id)) for c in shown}

    # Never read: everything since the caller joined is unread. Only what the caller may see
    # counts (a marker from before they left and came back may lie below it). Counted in one
    # call for every channel with something newer than that (a statement, not one per channel).
    after = {
        channel_id: max(
            markers.get(channel_id) or id_floor(membership.joined_at_ms) - 1,
            lowest[channel_id] - 1,
        )
        for channel_id, membership in memberships.items()
        if channel_id in lowest
    }
    counts = await stores.messages.unread_and_mentions(
        {c: upto for c, upto in after.items() if last.get(c, 0) > upto},
        reader=caller.user_id,
        cap=UNREAD_COUNT_CAP,
    )
    bodies = []
    for channel in shown:
        visible = lowest[channel.channel_id]
        newest = last.get(channel.channel_id)
        body = channel_body(channel, newest if newest is not None and newest >= visible else None)
        marker = markers.get(channel.channel_id)
        body["read_message_id"] = str(marker) if marker is not None and marker >= visible else None
        unread, mentioned = counts.get(channel.channel_id, (0, 0))
        body["unread_count"], body["mention_count"] = unread, mentioned
        membership = memberships.get(channel.channel_id)
        if membership is not None:
            settings = membership.notifications
            body["notifications"] = {
                "level": settings.level,
                "muted_until": None
                if settings.muted_until_ms is None
                else iso_ms(settings.muted_until_ms),
                "version": settings.version,
            }
        bodies.append(body)
    return bodies


def _lowest(membership: Membership | None) -> int:
    return MAX_ID if membership is None else visible_from(membership)


async def require_member(channels: ChannelStore, channel_id: str, user_id: str) -> Membership:
    """`not_member` unless `user_id` is in the channel now, read from the store each time (for
    the HTTP API's reads and changes of members; a socket's writes ask the gateway's cache,
    gateway/commands/messages.py `writer_membership`)."""
    membership = await channels.membership(channel_id, user_id)
    if membership is None:
        raise not_member()
    return membership


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


MANAGERS = ("owner", "admin")


async def _is_direct(channels: ChannelStore, channel_id: str) -> bool:
    channel = await channels.channel(channel_id)
    return channel is not None and channel.type == "direct"


async def require_group(channels: ChannelStore, channel_id: str) -> None:
    """`invalid` for a direct channel, whose members never change (asked only on refusal)."""
    if await _is_direct(channels, channel_id):
        raise invalid("members can only be changed in a group")


async def add_member(
    services: Services, caller: Device, channel_id: object, body: dict[str, Any]
) -> None:
    channel_id = require_id(channel_id, "channel_id")
    new_member = require_body(NewMember, body).user_id
    channels = services.stores.channels
    mine = await require_member(channels, channel_id, caller.user_id)
    if mine.role not in MANAGERS:
        await require_group(channels, channel_id)
        raise forbidden("only the group's owners and admins add members")
    if new_member != caller.user_id:  # a member adding themself changes nothing
        await _may_add(services, caller, [new_member])
    try:
        members = await channels.add_member(channel_id, new_member, MAX_GROUP_MEMBERS)
    except GroupFull:
        raise group_full() from None
    except NotAGroup:
        raise invalid("members can only be changed in a group") from None
    except UnknownUsers:
        raise not_found("user") from None
    await publish_members(services, channel_id, members, [new_member])


async def remove_member(
    services: Services, caller: Device, channel_id: object, member: object
) -> None:
    channel_id = require_id(channel_id, "channel_id")
    member = require_id(member, "user_id")
    channels = services.stores.channels
    mine = await require_member(channels, channel_id, caller.user_id)
    if member == caller.user_id and await _is_direct(channels, channel_id):
        # Nobody leaves a direct channel (it is the pair's one); its member hides it instead.
        # Up to now: a message accepted but not stored yet was sent earlier, so its id is below
        # this moment's floor (ids follow their send time) and it stays hidden too.
        newest = await services.stores.messages.last_message_ids([channel_id])
        upto = max(newest.get(channel_id, 0), id_floor(now_ms()) - 1)
        await channels.hide(channel_id, caller.user_id, upto)
        return
    leaving_role = mine.role
    if member != caller.user_id:  # anyone may leave; removing others takes a role
        theirs = await channels.membership(channel_id, member)
        leaving_role = theirs.role if theirs is not None else "member"
        if mine.role not in MANAGERS:
            await require_group(channels, channel_id)
            raise forbidden("only the group's owners and admins remove members")
        if theirs is not None and theirs.role == "owner":
            raise forbidden("an owner leaves by themself; others cannot remove them")
        if theirs is not None and theirs.role == "admin" and mine.role != "owner":
            raise forbidden("only owners remove admins")
    try:
        # When the last owner leaves, the store hands the group to the next in line.
        members = await channels.remove_member(channel_id, member)
    except NotAGroup:
        raise invalid("members can only be changed in a group") from None
    # An owner's leave may have made another member owner: every member's role is news then.
    changed = [member, *members] if leaving_role == "owner" else [member]
    await publish_members(services, channel_id, members, changed)


async def set_role(
    services: Services, caller: Device, channel_id: object, member: object, body: dict[str, Any]
) -> None:
    """Make a member `owner`, `admin` or `member`. Owners may give any role, admins only make
    members admins; a group always keeps an owner (the last one hands over first)."""
    channel_id = require_id(channel_id, "channel_id")
    member = require_id(member, "user_id")
    role = require_body(MemberRole, body).role
    channels = services.stores.channels
    mine = await require_member(channels, channel_id, caller.user_id)
    theirs = await channels.membership(channel_id, member)
    if theirs is None:
        raise not_found("member")
    allowed = mine.role == "owner" or (
        mine.role == "admin" and theirs.role == "member" and role == "admin"
    )
    if not allowed:
        raise forbidden("only owners change roles (admins may make members admins)")
    try:
        await channels.set_role(channel_id, member, role)
    except NotAGroup:
        raise invalid("roles exist only in groups") from None
    except NotAMember:
        raise not_found("member") from None
    except LastOwner:
        raise ApiError(
            422, "last_owner", "a group keeps an owner: make another member owner first"
        ) from None
    await memberships_changed(services, channel_id, [member])


async def history(
    services: Services, caller: Device, channel_id: object, query: dict[str, str]
) -> list[Message]:
    """A page of the channel's messages, ascending by id (SPEC §2), each in its latest state
    (edited text, tombstone, reactions, reply count; a reply with the quote of the message it
    answers): the changes themselves are for sync and live. Only the messages the caller may
    see (storage/visibility.py): a page that reaches below them ends there. With `thread`, the
    replies to that message only (a thread), paged the same way."""
    channel_id = require_id(channel_id, "channel_id")
    membership = await require_member(services.stores.channels, channel_id, caller.user_id)
    lowest = visible_from(membership)
    messages = services.stores.messages
    limit = _limit(query.get("limit"))
    cursors = {k: query[k] for k in ("before", "after", "around") if k in query}
    if len(cursors) > 1:
        raise invalid("give at most one of before, after, around")
    thread = None
    if "thread" in query:
        thread = parse_id(query["thread"])
        if thread is None:
            raise invalid("thread must be a message id")
        if "around" in cursors:
            raise invalid("a thread is paged with before or after, not around")
        root = await messages.get(channel_id, thread)
        if root is None or root.kind != "message" or thread < lowest:
            raise not_found("message")  # nor one the caller may not see
    page = partial(messages.page, channel_id, changes=False, thread=thread)
    if not cursors:
        return await quoted(messages, _from(lowest, await page(limit=limit)), lowest)
    ((kind, raw),) = cursors.items()
    at = parse_id(raw)
    if at is None:
        raise invalid(f"{kind} must be a message id")
    if kind == "before":
        found = _from(lowest, await page(before=at, limit=limit))
    elif kind == "after":
        found = await page(after=max(at, lowest - 1), limit=limit)
    else:
        # around: the message itself and those on both sides of it, `limit` in all.
        older = _from(lowest, await page(before=at + 1, limit=limit // 2 + 1))
        found = older + await page(after=max(at, lowest - 1), limit=limit - len(older))
    return await quoted(messages, found, lowest)


async def pins(services: Services, caller: Device, channel_id: object) -> list[Message]:
    """The channel's pinned messages, the most recently pinned first, in their latest state:
    only those the caller may see (storage/visibility.py)."""
    channel_id = require_id(channel_id, "channel_id")
    membership = await require_member(services.stores.channels, channel_id, caller.user_id)
    lowest = visible_from(membership)
    pinned = await services.stores.messages.pins(channel_id)
    return await quoted(
        services.stores.messages, [m for m in pinned if m.message_id >= lowest], lowest
    )


def _from(lowest: int, page: list[Message]) -> list[Message]:
    """The page without the messages below `lowest` (ascending: they are at its start)."""
    return [m for m in page if m.message_id >= lowest]


def _require_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{field} must be true or false")
    return value


async def change_group(
    services: Services, caller: Device, channel_id: object, body: dict[str, Any]
) -> Channel:
    """Change a group's settings: `{"history_visible": bool}`, whether members who join later
    see its past (storage/visibility.py). Owners and admins only; the rule reads the setting as
    it is now, so the change applies at once to every member's history, sync and search."""
    channel_id = require_id(channel_id, "channel_id")
    visible = require_body(GroupSettings, body).history_visible
    channels = services.stores.channels
    mine = await require_member(channels, channel_id, caller.user_id)
    if mine.role not in MANAGERS:
        await require_group(channels, channel_id)
        raise forbidden("only the group's owners and admins change its settings")
    try:
        channel = await channels.set_history_visible(channel_id, visible)
    except NotAGroup:
        raise invalid("only a group has settings: a direct channel is visible to both") from None
    # The members' cached memberships carry the setting: drop them on every gateway.
    await memberships_changed(services, channel_id, channel.members)
    return channel


_LIMIT = re.compile(r"[0-9]{1,3}")  # ASCII digits: str.isdigit also takes "²" and "٣"


def _limit(raw: str | None) -> int:
    if raw is None:
        return HISTORY_LIMIT_DEFAULT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= HISTORY_LIMIT_MAX:
        raise invalid(f"limit must be 1-{HISTORY_LIMIT_MAX}")
    return int(raw)
