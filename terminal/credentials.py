"""The device login the terminal client keeps between runs: the gateway's URL and the token of
the device that `parley login` or `parley chat` made, in one JSON file readable by its owner
only (`$PARLEY_CONFIG_DIR/session.json`, else `~/.config/parley/session.json`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import orjson

FILE_NAME = "session.json"


class NoCredentials(Exception):
    """No stored login, or one that cannot be read: the message says what to do."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A logged-in device, as `POST /v1/sessions` gave it, and the gateway that gave it."""

    url: str
    username: str
    user_id: str
    device_id: str
    token: str = field(repr=False)


def config_dir() -> Path:
    override = os.environ.get("PARLEY_CONFIG_DIR")
    return Path(override) if override else Path.home() / ".config" / "parley"


def path() -> Path:
    return config_dir() / FILE_NAME


def save(credentials: Credentials) -> Path:
    """Write the login, readable and writable by its owner only (0600), replacing any other."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = target.with_suffix(".tmp")
    # Created 0600 before a byte is written: the token is never readable by others.
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(asdict(credentials), option=orjson.OPT_INDENT_2))
    os.chmod(staging, 0o600)  # in case the file was there already with other bits
    os.replace(staging, target)
    return target


def load() -> Credentials:
    """The stored login; NoCredentials if there is none or it is not one."""
    source = path()
    try:
        data = orjson.loads(source.read_bytes())
        return Credentials(**{f.name: str(data[f.name]) for f in fields(Credentials)})
    except FileNotFoundError:
        raise NoCredentials("not logged in: run `parley login` or `parley chat`") from None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise NoCredentials(f"{source} is not a Parley login ({exc}): run `parley login`") from None


def forget() -> bool:
    """Delete the stored login; False if there was none."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
