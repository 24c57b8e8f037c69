"""The close codes of a Parley socket, named once for the server (docs/protocol.md, "Close
codes").

The client library has the same enum in `parley_client/codes.py`, which the server does not
import (that package brings the client's dependencies, and the client imports nothing of the
server): tests/test_close_codes.py checks that the two agree, name for name and code for code.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    """A normal close, also when a server-side failure ends the connection: reconnect."""
    GOING_AWAY = 1001
    """The gateway shut down with this socket still open: reconnect through discovery."""
    ABNORMAL = 1006
    """No close frame (reported by the client side): the gateway died or the network failed."""
    TOO_BIG = 1009
    """A frame over the transport's cap (uvicorn's `ws_max_size`)."""
    SERVER_ERROR = 1011
    """The database failed during hello or the sync: reconnect after a short wait."""
    SERVICE_RESTART = 1012
    """The gateway is draining: reconnect through discovery at once."""
    UNAUTHORIZED = 4001
    """No valid hello, a bad token, a revoked device or an expired token: log in again."""
    SUSPENDED = 4003
    """The account was suspended by an operator: do not reconnect."""
    IDLE = 4002
    """No frame for three heartbeat intervals: reconnect, and heartbeat."""
    TOO_SLOW = 4008
    """The socket's outbound queue overflowed: reconnect; the sync resends what was dropped."""
    TOO_MANY_SOCKETS = 4009
    """The device already has `max_sockets_per_device` sockets on this gateway: close one."""


SUSPENDED_REASON = "account suspended"  # the reason of a close with `SUSPENDED`
