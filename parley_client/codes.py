"""The close codes of a Parley socket, named once (docs/protocol.md, "Close codes")."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal


class CloseCode(IntEnum):
    NORMAL = 1000
    """A normal close, also when a server-side failure ends the connection: reconnect."""
    GOING_AWAY = 1001
    """The gateway shut down with this socket still open: reconnect through discovery."""
    ABNORMAL = 1006
    """No close frame (reported by the client side): the gateway died or the network failed."""
    TOO_BIG = 1009
    """A frame over the transport's 1 MiB cap."""
    SERVER_ERROR = 1011
    """The database failed during hello or the sync: reconnect after a short wait."""
    SERVICE_RESTART = 1012
    """The gateway is draining: reconnect through discovery at once."""
    UNAUTHORIZED = 4001
    """No valid hello, a bad token, the device logged out or was revoked (reason `session
    revoked`), or its token expired while the socket was open (reason `token expired`): log in
    again (or renew the token, if it has not expired, and reconnect)."""
    SUSPENDED = 4003
    """The account was suspended by an operator (an `error` `suspended` may come first): do
    not reconnect; log-ins are refused until the suspension is lifted."""
    IDLE = 4002
    """No frame for three heartbeat intervals: reconnect, and heartbeat."""
    TOO_SLOW = 4008
    """The socket's outbound queue overflowed: reconnect; the sync resends what was dropped."""
    TOO_MANY_SOCKETS = 4009
    """The device already has `max_sockets_per_device` sockets on this gateway: close one."""


ErrorCode = Literal[
    "invalid",
    "too_large",
    "not_member",
    "not_found",
    "forbidden",
    "rate_limited",
    "unauthorized",
    "suspended",
    "internal",
]
"""The codes of `error` frames."""
