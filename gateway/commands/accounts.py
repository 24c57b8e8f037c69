"""Accounts and devices: sign up, log in (a new device per login), authenticate, log out."""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from gateway import tokens
from gateway.errors import (
    ApiError,
    invalid,
    not_found,
    rate_limited,
    require_id,
    require_name,
    suspended,
    unauthorized,
)
from gateway.ratelimit import Throttle, address_key
from gateway.services import Services
from schemas.ids import new_id, now_ms
from storage.protocols import AccountStore, Device, Profile, UsernameTaken

USERNAME_MAX = 32
USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")  # fullmatch: `$` would let a final newline in
DISPLAY_NAME_MAX = 64
PROFILES_MAX = 100  # a batch of profiles: a group's members fit in one
# Bidirectional embeddings, overrides and isolates: they would reorder what follows a name.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

log = logging.getLogger("parley.accounts")

T = TypeVar("T")


@dataclass(frozen=True)
class Login:
    token: str
    device: Device
    # Devices this login signed out: the account was at `max_devices_per_user` live devices,
    # and the least recently logged-in or renewed one made room.
    signed_out: tuple[str, ...] = ()


async def sign_up(
    services: Services, address: str, username: object, password: object, display_name: object
) -> tuple[str, str]:
    """Create an account from client `address`; returns (user_id, username)."""
    signups = services.throttles.signups_per_address
    _throttle(signups, address_key(address), "sign-ups from this address")
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise invalid("username must be 3-32 characters of a-z, 0-9, _ . -")
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise invalid("password must be 8-128 characters")
    if display_name is not None:
        display_name = _display_name(display_name)
    user_id = new_id()
    password_hash = await _hashing(services.passwords.hash(password))
    try:
        await services.stores.accounts.create_user(user_id, username, password_hash, display_name)
    except UsernameTaken:
        raise ApiError(409, "username_taken", "that username is taken") from None
    return user_id, username


async def find_user(services: Services, caller: Device, username: object) -> dict[str, object]:
    """The user with this username, to open a direct chat with or befriend: `not_found` when
    there is none, or when a block stands between them and the caller (who learns nothing)."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise invalid("username must be 3-32 characters of a-z, 0-9, _ . -")
    user = await services.stores.accounts.user_by_username(username)
    blocks = services.stores.friends.blocked_between
    if user is None or await blocks(caller.user_id, [user.user_id]):
        raise not_found("user")
    return {"user_id": user.user_id, "username": user.username, "display_name": user.display_name}


def _display_name(raw: object) -> str:
    """A display name as stored: NFC, 1-64 characters, not blank, without control characters
    or bidirectional controls; else 422 `invalid`."""
    if isinstance(raw, str):
        raw = unicodedata.normalize("NFC", raw[: 4 * DISPLAY_NAME_MAX])  # bounded work
    name = require_name(raw, "display_name", DISPLAY_NAME_MAX)
    if not name.strip() or _BIDI_CONTROLS.search(name):
        raise invalid("display_name must not be blank nor hold bidirectional controls")
    return name


def _profile_body(profile: Profile) -> dict[str, object]:
    body: dict[str, object] = {
        "user_id": profile.user_id,
        "username": profile.username,
        "display_name": profile.display_name,
    }
    if profile.suspended:
        body["suspended"] = True  # by an operator
    return body


async def profile(services: Services, caller: Device, user_id: object) -> dict[str, object]:
    """One user's profile, if the caller may see it (`AccountStore.visible_profiles`: their
    own, a group co-member's, a friend's or direct contact's); else `not_found`, as for a user
    who does not exist."""
    user_id = require_id(user_id, "user_id")
    found = await services.stores.accounts.visible_profiles(caller.user_id, [user_id])
    if not found:
        raise not_found("user")
    return _profile_body(found[0])


async def profiles(services: Services, caller: Device, ids: object) -> list[dict[str, object]]:
    """The profiles the caller may see among `ids` (a comma-separated list of 1-100 user ids;
    repeats count once), in the order asked; the others are left out."""
    if not isinstance(ids, str) or not ids:
        raise invalid(f"ids must be 1-{PROFILES_MAX} user ids, separated by commas")
    parts = ids.split(",", PROFILES_MAX)  # bounded: at most one part past the limit
    if len(parts) > PROFILES_MAX:
        raise invalid(f"ids must be 1-{PROFILES_MAX} user ids, separated by commas")
    wanted = list(dict.fromkeys(require_id(part, "each of ids") for part in parts))
    found = {
        p.user_id: p
        for p in await services.stores.accounts.visible_profiles(caller.user_id, wanted)
    }
    return [_profile_body(found[u]) for u in wanted if u in found]


async def set_profile(
    services: Services, caller: Device, body: dict[str, object]
) -> dict[str, object]:
    """Change the caller's profile: `display_name`, a name (NFC, 1-64 characters) or null to
    have none. The answer is the profile."""
    if set(body) != {"display_name"}:
        raise invalid("the body must hold display_name and nothing else")
    raw = body["display_name"]
    display_name = None if raw is None else _display_name(raw)
    changed = await services.stores.accounts.set_display_name(caller.user_id, display_name)
    if changed is None:
        raise unauthorized()
    return _profile_body(changed)


async def log_in(
    services: Services, address: str, username: object, password: object, device_name: object
) -> Login:
    """Check the password and register a new device with a fresh token. Attempts are
    throttled per client `address`, per (account, address) and per account, whether they
    succeed or not (`LoginThrottle`); a success gives its (account, address) its attempts
    back. At
    `max_devices_per_user` live devices, the least recently logged-in or renewed one is signed
    out to make room (as a revocation: its sockets close, its push endpoint goes)."""
    throttles = services.throttles
    address = address_key(address)
    _throttle(throttles.logins_per_address, address, "log-ins from this address")
    if not isinstance(username, str) or not isinstance(password, str):
        raise invalid("username and password are required strings")
    account = _account_key(username)
    wait_s = throttles.logins.attempt(account, address)
    if wait_s > 0:
        raise rate_limited("too many log-ins to this account; try again later", wait_s)
    if device_name is not None:
        device_name = require_name(device_name, "device_name", 64)
    accounts = services.stores.accounts
    # A name no account can have is not looked up (it may hold what the store refuses, a
    # NUL): it is answered as an unknown one, after the same hashing.
    user = await accounts.user_by_username(username) if USERNAME.fullmatch(username) else None
    # Verified even for an unknown username, so that the answer takes as long either way.
    verified = await _hashing(
        services.passwords.verify(user.password_hash if user else None, password)
    )
    if not verified or user is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    if user.suspended:  # told only to who knows the password
        raise suspended()
    throttles.logins.succeeded(account, address)
    token = tokens.new_token()
    device, evicted = await accounts.create_device(
        new_id(),
        user.user_id,
        device_name,
        tokens.token_hash(token),
        _expiry(services),
        services.settings.max_devices_per_user,
    )
    for device_id in evicted:
        log.info("login of %s signed out device %s (device cap)", user.user_id, device_id)
        await _end_sessions(services, user.user_id, device_id)
    return Login(token, device, tuple(evicted))


def _account_key(username: str) -> str:
    """What a log-in is throttled as: the account its name stands for. Usernames are
    `USERNAME` and matched exactly, so the name is folded (NFKC, then casefold: `Alice` and
    its fullwidth form count as `alice`, whom no other name can reach) and cut one past the
    longest username, so that a name of any length makes a small key. Only its start is
    folded: folding may grow a text many times over."""
    head = username[: 2 * USERNAME_MAX]
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", head).casefold())
    return folded[: USERNAME_MAX + 1]


def _throttle(throttle: Throttle, key: str, what: str) -> None:
    wait_s = throttle.attempt(key)
    if wait_s > 0:
        raise rate_limited(f"too many {what}; try again later", wait_s)


async def _hashing(work: Awaitable[T]) -> T:
    try:
        return await work
    except tokens.HashingBusy:
        raise rate_limited("the server is busy; try again shortly", 1.0) from None


def _expiry(services: Services) -> int:
    return now_ms() + int(services.settings.token_ttl_s * 1000)


async def authenticate(accounts: AccountStore, token: str | None) -> Device:
    """The device a token belongs to; `unauthorized` if missing, unknown or revoked,
    `suspended` if its user is."""
    if not token:
        raise unauthorized()
    device = await accounts.device_by_token(tokens.token_hash(token))
    if device is None:
        raise unauthorized()
    if device.suspended:
        raise suspended()
    return device


async def renew_token(services: Services, caller: Device) -> Login:
    """A new token for the caller's device, valid for another `token_ttl_s`; the old one stops
    working at once (sockets it opened stay open)."""
    token = tokens.new_token()
    expires_at_ms = _expiry(services)
    if not await services.stores.accounts.renew_token(
        caller.device_id, tokens.token_hash(token), expires_at_ms
    ):
        raise unauthorized()  # revoked or expired meanwhile
    return Login(token, dataclasses.replace(caller, expires_at_ms=expires_at_ms))


async def list_devices(services: Services, caller: Device) -> list[Device]:
    """The caller's devices not revoked, oldest first: expired ones too (`expires_at_ms`
    past), so that they can be seen and revoked."""
    return await services.stores.accounts.devices(caller.user_id)


async def log_out(services: Services, device: Device) -> None:
    """Revoke the caller's own device (its current session)."""
    await _revoke(services, device.user_id, device.device_id)


async def revoke_device(services: Services, caller: Device, device_id: object) -> None:
    """Revoke one of the caller's devices (this one included), expired ones too."""
    device_id = require_id(device_id, "device_id")
    owned = {d.device_id for d in await services.stores.accounts.devices(caller.user_id)}
    if device_id not in owned:
        raise not_found("device")
    await _revoke(services, caller.user_id, device_id)


async def revoke_all_devices(services: Services, caller: Device) -> None:
    """Revoke every device of the caller's account, this one included."""
    for device_id in await services.stores.accounts.revoke_devices(caller.user_id):
        await _end_sessions(services, caller.user_id, device_id)


async def _revoke(services: Services, user_id: str, device_id: str) -> None:
    """Revoke the device: its token stops working at once, then its sessions end."""
    await services.stores.accounts.revoke_device(device_id)  # idempotent
    await _end_sessions(services, user_id, device_id)


async def _end_sessions(services: Services, user_id: str, device_id: str) -> None:
    """For a revoked device: its push endpoint goes, and every socket of it closes, on this
    gateway first and then on the others (through the inbox)."""
    await services.stores.push.remove_endpoint(device_id)
    # Local sockets close before anything is published: a broker that is down cannot keep a
    # revoked device's sockets open here, and the client learns of the failure from the 503.
    for connection in services.registry.of_user(user_id):
        if connection.device_id == device_id:
            connection.revoke()
    services.publisher.presence("logout", user_id, device_id, "")
    await services.publisher.device_revoked(user_id, device_id)  # retried
