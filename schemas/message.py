"""The message as clients, history and the inbox topic see it."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, field_serializer


class Message(BaseModel):
    """A persisted message. `message_id` is an integer here and a decimal string on the wire."""

    model_config = ConfigDict(frozen=True)

    channel_id: str
    message_id: int
    sender_id: str
    sender_device_id: str
    client_msg_id: str
    text: str
    sent_at: str

    @field_serializer("message_id")
    def _id_as_string(self, value: int) -> str:
        return str(value)

    def wire(self) -> dict[str, Any]:
        """The message's fields as they appear in a frame or an HTTP body."""
        return {
            "channel_id": self.channel_id,
            "message_id": str(self.message_id),
            "sender_id": self.sender_id,
            "sender_device_id": self.sender_device_id,
            "client_msg_id": self.client_msg_id,
            "text": self.text,
            "sent_at": self.sent_at,
        }

    def encode(self) -> bytes:
        """The message's fields as JSON, as they appear inside an `inbox.message` event."""
        return orjson.dumps(self.wire())
