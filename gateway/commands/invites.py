"""Invite links to groups: owners and admins make and revoke them; whoever holds one may look
at the group it leads to and join it (docs/protocol.md, Invite links).

A link's code is a bearer secret of 144 random bits. Only its SHA-256 is stored, so a leak of
the database lets nobody in, and nobody can show a link again after it was made: a list names
each link by its id and its code's first characters.

Joining by a link is the joiner's own act, so their `group_adds` setting (who may put them in
a group) has nothing to refuse: nobody else puts them anywhere, and a link only ever adds the
user who uses it. What the setting protects (not being put into groups by others) holds. The
rest of what an add checks holds too: no block between the joiner and any of the group's
owners or admins (on whose behalf the link speaks), the 100-member cap, and the same
membership path and events as an add (`gateway/commands/channels.py`)."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from gateway.commands.channels import (
    MANAGERS,
    channel_body,
    forbidden,
    group_full,
    publish_members,
    require_group,
    require_member,
)
from gateway.errors import ApiError, blocked, not_found, rate_limited, require_body, require_id
from gateway.services import Services
from schemas.http import NewInvite
from schemas.ids import iso_ms, new_id, now_ms
from schemas.limits import MAX_GROUP_INVITES, MAX_GROUP_MEMBERS
from storage.protocols import (
    Device,
    GroupFull,
    Invite,
    InviteUnusable,
    NotAGroup,
    TooManyInvites,
)

CODE_BYTES = 18  # 144 bits; 24 URL-safe characters
CODE_PREFIX_CHARS = 6
_CODE = re.compile(r"[A-Za-z0-9_-]{24}")


def _hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def _unusable() -> ApiError:
    # One answer for a code never made, revoked, expired or used up: no oracle for guessers.
    return not_found("invite (it may have been revoked, expired or used up)")


def invite_body(invite: Invite) -> dict[str, Any]:
    return {
        "invite_id": invite.invite_id,
        "code_prefix": invite.code_prefix,
        "channel_id": invite.channel_id,
        "created_by": invite.created_by,
        "created_at": iso_ms(invite.created_at_ms),
        "expires_at": None if invite.expires_at_ms is None else iso_ms(invite.expires_at_ms),
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "usable": invite.usable,
    }


async def _require_manager(services: Services, caller: Device, channel_id: str) -> None:
    mine = await require_member(services.stores.channels, channel_id, caller.user_id)
    if mine.role not in MANAGERS:
        await require_group(services.stores.channels, channel_id)
        raise forbidden("only the group's owners and admins manage its invite links")


async def create_invite(
    services: Services, caller: Device, channel_id: object, body: dict[str, Any]
) -> dict[str, Any]:
    """A new invite link to the group (owners and admins): its body, with the code, shown this
    once."""
    channel_id = require_id(channel_id, "channel_id")
    wanted = require_body(NewInvite, body)
    await _require_manager(services, caller, channel_id)
    code = secrets.token_urlsafe(CODE_BYTES)
    expires = None if wanted.expires_in_s is None else now_ms() + wanted.expires_in_s * 1000
    try:
        invite = await services.stores.invites.create(
            new_id(),
            _hash(code),
            code[:CODE_PREFIX_CHARS],
            channel_id,
            caller.user_id,
            expires,
            wanted.max_uses,
            MAX_GROUP_INVITES,
        )
    except NotAGroup:
        raise ApiError(422, "invalid", "only a group has invite links") from None
    except TooManyInvites:
        raise ApiError(
            422,
            "too_many_invites",
            f"a group has at most {MAX_GROUP_INVITES} usable invite links: revoke one first",
        ) from None
    return {**invite_body(invite), "code": code}


async def list_invites(services: Services, caller: Device, channel_id: object) -> list[Invite]:
    """The group's invite links (owners and admins), oldest first, without their codes."""
    channel_id = require_id(channel_id, "channel_id")
    await _require_manager(services, caller, channel_id)
    return await services.stores.invites.invites(channel_id)


async def revoke_invite(
    services: Services, caller: Device, channel_id: object, invite_id: object
) -> None:
    """Revoke one of the group's invite links (owners and admins): it stops working at once."""
    channel_id = require_id(channel_id, "channel_id")
    invite_id = require_id(invite_id, "invite_id")
    await _require_manager(services, caller, channel_id)
    if not await services.stores.invites.revoke(channel_id, invite_id):
        raise not_found("invite")


def _require_code(services: Services, caller: Device, code: object) -> bytes:
    """The code's hash, once the caller's share of lookups allows one (a malformed or unknown
    code costs its token too: guessing goes no faster than looking)."""
    wait_s = services.invite_lookups.take(caller.user_id, 1)
    if wait_s:
        raise rate_limited("too many invite links looked up or used; slow down", wait_s)
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _unusable()
    return _hash(code)


async def preview(services: Services, caller: Device, code: object) -> dict[str, Any]:
    """What the link leads to, for whoever holds it: the group's id and name, how many members
    it has, and whether the caller is one. Never its member list (to a non-member)."""
    target = await services.stores.invites.target(_require_code(services, caller, code))
    if target is None:
        raise _unusable()
    invite = target.invite
    membership = await services.stores.channels.membership(invite.channel_id, caller.user_id)
    return {
        "channel_id": invite.channel_id,
        "name": target.name,
        "member_count": target.member_count,
        "member": membership is not None,
        "expires_at": None if invite.expires_at_ms is None else iso_ms(invite.expires_at_ms),
    }


async def join(services: Services, caller: Device, code: object) -> dict[str, Any]:
    """Join the group of the link: the caller becomes a member as if added (the same store
    path, events and history rule), and the link counts a use. A member already is answered
    with the group and uses nothing. Refused with `blocked` if a block stands between the
    caller and any of the group's owners or admins, `group_full` at the cap."""
    code_hash = _require_code(services, caller, code)
    target = await services.stores.invites.target(code_hash)
    if target is None:
        raise _unusable()
    # Like an add, checked before the membership transaction: a block made in the same instant
    # may not stop it (docs/architecture.md, Group adds).
    managers = [*target.managers, target.invite.created_by]
    if await services.stores.friends.blocked_between(caller.user_id, managers):
        raise blocked()
    try:
        joined = await services.stores.invites.join(code_hash, caller.user_id, MAX_GROUP_MEMBERS)
    except InviteUnusable:
        raise _unusable() from None
    except GroupFull:
        raise group_full() from None
    if joined.added:
        await publish_members(services, joined.channel_id, joined.members, [caller.user_id])
    channel = await services.stores.channels.channel(joined.channel_id)
    if channel is None:  # the group went away since: nothing to show
        raise _unusable()
    return channel_body(channel)
