"""Delivers inbox records to this gateway's connections.

The gateway follows the inbox partitions of the users connected to it (gateway/follower.py);
each `inbox.message` record lists its recipients in that partition, and is handed to those of
their connections that are here. The frame is encoded once per record, not once per socket.
`inbox.membership` records drop what the gateway cached of their users' memberships
(gateway/memberships.py); `device.revoked` and `user.suspended` close sockets here.
"""

from __future__ import annotations

import logging

import orjson

from gateway.connections import Registry
from gateway.encoding import frame
from gateway.memberships import MembershipCache
from schemas.codes import SUSPENDED_REASON, CloseCode
from schemas.message import frame_of

log = logging.getLogger("parley.inbox")


class InboxDispatcher:
    def __init__(self, registry: Registry, memberships: MembershipCache) -> None:
        self._registry = registry
        self._memberships = memberships

    def __call__(self, raw: bytes) -> None:
        try:
            event = orjson.loads(raw)
            kind, version = event["type"], event["v"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("skipping an unreadable inbox record")
            return
        if kind == "inbox.message" and version == 1:
            connections = [c for u in event["recipients"] for c in self._registry.of_user(u)]
            if not connections:
                return
            message = event["message"]
            text = frame(frame_of(message))
            channel_id, message_id = message["channel_id"], int(message["message_id"])
            for connection in connections:
                connection.deliver(channel_id, message_id, text)
        elif kind == "inbox.signal" and version == 1:
            connections = [c for u in event["recipients"] for c in self._registry.of_user(u)]
            if connections:
                text = frame(event["frame"])
                for connection in connections:
                    connection.signal(text)
        elif kind == "inbox.membership" and version == 1:
            self._memberships.invalidate(event["user_ids"], event["channel_id"])
        elif kind == "device.revoked" and version == 1:
            for connection in self._registry.of_user(event["user_id"]):
                if connection.device_id == event["device_id"]:
                    connection.revoke()
        elif kind == "user.suspended" and version == 1:
            for connection in self._registry.of_user(event["user_id"]):
                connection.kill(CloseCode.SUSPENDED, SUSPENDED_REASON)
        else:
            log.error("skipping inbox record of unknown type %s v%s", kind, version)
