"""The bodies the HTTP API takes (SPEC §2), as models: the OpenAPI document
(`gateway/openapi.py`) is generated from them. A model that says how to word its refusals
(`Body.refusal`) also validates its body (`gateway/errors.py` `require_body`: strictly, no
coercion), with the messages the clients see, at the point of the command where the body is
judged (after the ids in the path). The others only describe what is valid, and their
commands (`gateway/commands/`) validate by hand, where that gives the better answer: sign-up
and log-in count an attempt against the address before judging the body, and name the field
at fault; a new channel's fields depend on its type, each with its own message; a display
name is judged after NFC normalisation, blank or not, with its own messages."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails

from schemas.ids import NO_CONTROL_PATTERN, IdString
from schemas.limits import (
    MAX_INVITE_TTL_S,
    MAX_INVITE_USES,
    MAX_PUSH_TOKEN_CHARS,
    MAX_REPORT_NOTE_CHARS,
    MIN_INVITE_TTL_S,
)


class Body(BaseModel):
    """A body validated by its model: a body that fails gets `invalid` with `refusal`'s words."""

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        """The message for a body with these `errors` (in the order of the fields)."""
        raise NotImplementedError


def _name(max_chars: int) -> Any:
    """An optional name: 1..max_chars characters without control characters."""
    return Field(default=None, min_length=1, max_length=max_chars, pattern=NO_CONTROL_PATTERN)


class NewUser(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9_.-]{3,32}$")
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = _name(64)


class NewSession(BaseModel):
    username: str
    password: str
    device_name: str | None = _name(64)


class NewChannel(BaseModel):
    type: Literal["direct", "group"]
    user_id: IdString | None = Field(default=None, description="direct: the other user")
    name: str | None = _name(100)
    member_ids: list[IdString] | None = Field(default=None, max_length=100)
    history_visible: bool = Field(
        default=True, description="group: members who join later see its past (default true)"
    )


class GroupSettings(Body):
    model_config = ConfigDict(extra="forbid")
    history_visible: bool = Field(description="members who join later see the group's past")

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        if all(e["type"] == "bool_type" for e in errors):  # the one field, of another type
            return "history_visible must be true or false"
        return 'the body must be {"history_visible": true|false}'


class NewMember(Body):
    user_id: IdString

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        return "user_id must be an id: a decimal number"


class MemberRole(Body):
    role: Literal["owner", "admin", "member"]

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        return "role must be 'owner', 'admin' or 'member'"


class NewInvite(Body):
    """`POST /v1/channels/{channel_id}/invites`: a link that lasts `expires_in_s` (none: until
    revoked) and may be used `max_uses` times (none: any number)."""

    model_config = ConfigDict(extra="forbid")
    expires_in_s: int | None = Field(
        default=None,
        ge=MIN_INVITE_TTL_S,
        le=MAX_INVITE_TTL_S,
        description="seconds the link works for (default: until revoked)",
    )
    max_uses: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INVITE_USES,
        description="how many users may join with it (default: no limit)",
    )

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        return (
            f"expires_in_s must be {MIN_INVITE_TTL_S}-{MAX_INVITE_TTL_S} seconds and max_uses"
            f" 1-{MAX_INVITE_USES} (both optional), nothing else"
        )


class PushEndpointBody(Body):
    platform: str = Field(pattern=r"^[a-z0-9_.-]{1,32}$")
    token: str = Field(min_length=1, max_length=MAX_PUSH_TOKEN_CHARS, pattern=NO_CONTROL_PATTERN)

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        error = errors[0]
        if error["loc"][:1] == ("platform",):
            return "platform must be 1-32 of [a-z0-9_.-]"
        if error["type"] == "string_pattern_mismatch":
            # A provider's handle is printable; a NUL is what the store would refuse (SPEC §4).
            return "token must not contain control characters"
        return f"token must be a string of 1-{MAX_PUSH_TOKEN_CHARS} characters"


class MessageBody(BaseModel):
    """A message as every answer carries it (docs/protocol.md, A message)."""

    channel_id: IdString
    message_id: IdString
    sender_id: IdString
    sender_device_id: IdString
    client_msg_id: str
    text: str
    sent_at: str


class SnippetPart(BaseModel):
    """A piece of a snippet: plain text (never markup), `match` where the query matched."""

    text: str
    match: bool


class SearchChannel(BaseModel):
    channel_id: IdString
    type: Literal["direct", "group"] | None
    name: str | None


class SearchResult(BaseModel):
    message: MessageBody
    channel: SearchChannel
    snippet: list[SnippetPart]


class SearchResults(BaseModel):
    """`GET /v1/search`: matches newest first; `next_before` pages on (null: no more)."""

    results: list[SearchResult]
    next_before: IdString | None


def _some_of_the_fields(schema: JsonDict) -> None:
    """Every field is optional (without a default: one left out is left as it is), and at
    least one is given."""
    properties = schema["properties"]
    assert isinstance(properties, dict)
    for field in properties.values():
        assert isinstance(field, dict)
        field.pop("default", None)
    schema["minProperties"] = 1


class AccountSettings(Body):
    """`PUT /v1/settings`: the settings to change (the others stay as they are)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_some_of_the_fields)
    read_receipts: bool | SkipJsonSchema[None] = Field(
        default=None, description="share how far you have read with your channels"
    )
    group_adds: Literal["everyone", "friends", "nobody"] | SkipJsonSchema[None] = Field(
        default=None, description="who may add you to groups (friends unless chosen otherwise)"
    )

    @model_validator(mode="after")
    def _some_given(self) -> Self:
        """At least one setting, and none given as null."""
        if not self.model_fields_set or any(
            getattr(self, name) is None for name in self.model_fields_set
        ):
            raise ValueError("no setting given")
        return self

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        return (
            'the body must hold "read_receipts": true|false and/or'
            ' "group_adds": "everyone"|"friends"|"nobody", nothing else'
        )


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(
        min_length=1,
        max_length=64,
        pattern=NO_CONTROL_PATTERN,
        description="the name others see (stored NFC; not blank); null: none",
    )


class ChannelNotifications(Body):
    """`PUT /v1/channels/{id}/notifications`: the caller's notification settings there."""

    model_config = ConfigDict(extra="forbid")
    level: Literal["all", "mentions", "none"] = Field(
        description="all: every message notifies; mentions: only those that mention you;"
        " none: no push at all"
    )
    muted_until: str | None = Field(
        default=None,
        max_length=40,
        description="an ISO 8601 time with its offset: until then only mentions notify; null:"
        " not muted",
    )

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        return (
            'the body must be {"level": "all"|"mentions"|"none",'
            ' "muted_until": an ISO 8601 time with offset, or null}'
        )


# name -> model, as they appear under `components/schemas` of the OpenAPI document.
class NewReport(Body):
    """A member's report of a message: why (one of a fixed set), and a note if they like."""

    model_config = ConfigDict(extra="forbid")
    reason: Literal["spam", "harassment", "hate", "violence", "illegal", "other"]
    note: str | None = Field(
        default=None, min_length=1, max_length=MAX_REPORT_NOTE_CHARS, pattern=NO_CONTROL_PATTERN
    )

    @classmethod
    def refusal(cls, errors: list[ErrorDetails]) -> str:
        if errors and errors[0]["loc"][:1] == ("note",):
            return f"note must be 1-{MAX_REPORT_NOTE_CHARS} characters, without control characters"
        return (
            'the body must be {"reason": spam|harassment|hate|violence|illegal|other,'
            ' "note": an optional text}'
        )


ALL_BODIES: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        NewUser,
        ProfileChange,
        NewSession,
        NewChannel,
        GroupSettings,
        NewMember,
        MemberRole,
        NewInvite,
        PushEndpointBody,
        AccountSettings,
        NewReport,
        ChannelNotifications,
    )
}
# Answers described in the document (the others are in docs/protocol.md only).
ALL_ANSWERS: dict[str, type[BaseModel]] = {m.__name__: m for m in (SearchResults,)}
