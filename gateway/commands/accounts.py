"""Accounts and devices: sign up, log in (a new device per login), authenticate, log out."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from gateway import tokens
from gateway.errors import ApiError, invalid, require_name, unauthorized
from gateway.services import Services
from schemas.ids import new_id
from storage.protocols import AccountStore, Device, UsernameTaken

USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")  # fullmatch: `$` would let a final newline in

log = logging.getLogger("parley.accounts")


@dataclass(frozen=True)
class Login:
    token: str
    device: Device


async def sign_up(
    services: Services, username: object, password: object, display_name: object
) -> tuple[str, str]:
    """Create an account; returns (user_id, username)."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise invalid("username must be 3-32 characters of a-z, 0-9, _ . -")
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise invalid("password must be 8-128 characters")
    if display_name is not None:
        display_name = require_name(display_name, "display_name", 64)
    user_id = new_id()
    password_hash = await services.passwords.hash(password)
    try:
        await services.stores.accounts.create_user(user_id, username, password_hash, display_name)
    except UsernameTaken:
        raise ApiError(409, "username_taken", "that username is taken") from None
    return user_id, username


async def log_in(
    services: Services, username: object, password: object, device_name: object
) -> Login:
    """Check the password and register a new device with a fresh token."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise invalid("username and password are required strings")
    if device_name is not None:
        device_name = require_name(device_name, "device_name", 64)
    accounts = services.stores.accounts
    user = await accounts.user_by_username(username)
    # Verified even for an unknown username, so that the answer takes as long either way.
    verified = await services.passwords.verify(user.password_hash if user else None, password)
    if not verified or user is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    token = tokens.new_token()
    device = await accounts.create_device(
        new_id(), user.user_id, device_name, tokens.token_hash(token)
    )
    return Login(token, device)


async def authenticate(accounts: AccountStore, token: str | None) -> Device:
    """The device a token belongs to; `unauthorized` if missing, unknown or revoked."""
    if not token:
        raise unauthorized()
    device = await accounts.device_by_token(tokens.token_hash(token))
    if device is None:
        raise unauthorized()
    return device


async def log_out(services: Services, device: Device) -> None:
    """Revoke the device: its token stops working at once, its push endpoint goes, and every
    socket of it closes, on this gateway first and then on the others (through the inbox)."""
    await services.stores.accounts.revoke_device(device.device_id)
    await services.stores.push.remove_endpoint(device.device_id)
    # Local sockets close before anything is published: a broker that is down cannot keep a
    # revoked device's sockets open here, and the client learns of the failure from the 503.
    for connection in services.registry.of_user(device.user_id):
        if connection.device_id == device.device_id:
            connection.revoke()
    services.publisher.presence("logout", device.user_id, device.device_id, "")
    await services.publisher.device_revoked(device.user_id, device.device_id)  # retried
