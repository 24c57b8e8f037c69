"""A typed async client of Parley's public protocol: the HTTP API (`Client`) and WebSocket
sessions (`Session`), as docs/protocol.md describes them.

It depends on httpx, websockets and orjson only, never on the server's packages, so anything
that speaks the protocol can use it: the tests, the benchmarks, a terminal client.
"""

from parley_client.codes import CloseCode, ErrorCode
from parley_client.errors import ApiError, SessionError
from parley_client.http import Client, ws_url_of
from parley_client.models import (
    AcceptedFrame,
    Account,
    Authenticated,
    ChangeFrame,
    Channel,
    ChannelNotifications,
    ErrorFrame,
    Frame,
    Friend,
    FriendRequest,
    Level,
    Login,
    Message,
    MessageFrame,
    NotificationsFrame,
    Operator,
    Presence,
    PresenceFrame,
    PresenceState,
    PushEndpoint,
    Quote,
    Receipt,
    Report,
    ReportReason,
    SearchChannel,
    SearchResult,
    SearchResults,
    SnippetPart,
    UserCard,
    Welcome,
)
from parley_client.session import Session, encode_frame

__all__ = [
    "AcceptedFrame",
    "Account",
    "ApiError",
    "Authenticated",
    "ChangeFrame",
    "Channel",
    "ChannelNotifications",
    "Client",
    "CloseCode",
    "ErrorCode",
    "ErrorFrame",
    "Frame",
    "Friend",
    "FriendRequest",
    "Level",
    "Login",
    "Message",
    "MessageFrame",
    "NotificationsFrame",
    "Operator",
    "Presence",
    "PresenceFrame",
    "PresenceState",
    "PushEndpoint",
    "Quote",
    "Receipt",
    "Report",
    "ReportReason",
    "SearchChannel",
    "SearchResult",
    "SearchResults",
    "Session",
    "SessionError",
    "SnippetPart",
    "UserCard",
    "Welcome",
    "encode_frame",
    "ws_url_of",
]
