"""Accounts and devices: sign up, log in (a new device per login), authenticate, log out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway import tokens
from gateway.errors import ApiError, invalid, require_name, unauthorized
from schemas.ids import new_id
from storage.protocols import AccountStore, Device, UsernameTaken

USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")  # fullmatch: `$` would let a final newline in


@dataclass(frozen=True)
class Login:
    token: str
    device: Device


async def sign_up(
    accounts: AccountStore,
    passwords: tokens.Passwords,
    username: object,
    password: object,
    display_name: object,
) -> tuple[str, str]:
    """Create an account; returns (user_id, username)."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise invalid("username must be 3-32 characters of a-z, 0-9, _ . -")
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise invalid("password must be 8-128 characters")
    if display_name is not None:
        display_name = require_name(display_name, "display_name", 64)
    user_id = new_id()
    try:
        await accounts.create_user(user_id, username, await passwords.hash(password), display_name)
    except UsernameTaken:
        raise ApiError(409, "username_taken", "that username is taken") from None
    return user_id, username


async def log_in(
    accounts: AccountStore,
    passwords: tokens.Passwords,
    username: object,
    password: object,
    device_name: object,
) -> Login:
    """Check the password and register a new device with a fresh token."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise invalid("username and password are required strings")
    if device_name is not None:
        device_name = require_name(device_name, "device_name", 64)
    user = await accounts.user_by_username(username)
    if not await passwords.verify(user.password_hash if user else None, password) or user is None:
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
