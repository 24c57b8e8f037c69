"""The push notification a provider delivers: the body of a webhook POST, the line the log
provider writes. Versioned like the events on topics."""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict


class PushTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str
    platform: str
    token: str


class PushNotificationV1(BaseModel):
    """One message a user with no open socket missed, for all of that user's push endpoints.

    `push_id` is the same on every retry of the same push: receivers de-duplicate by it. Later
    messages of the same channel are coalesced into this push (no push of their own) until the
    user has been active again or `push_coalesce_s` has passed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["push.notification"] = "push.notification"
    v: Literal[1] = 1
    push_id: str
    user_id: str
    targets: list[PushTarget]
    channel_id: str
    message_id: str
    sender_id: str
    preview: str
    sent_at: str

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
