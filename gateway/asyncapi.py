"""The real-time protocol as an AsyncAPI 3.0 document, made from the frame models in
`schemas/frames.py`, the event models in `schemas/events.py` and the topics of
`topics/definitions.py`, and served at `GET /v1/asyncapi.json` beside the OpenAPI document.

Two servers: a gateway's WebSocket (`/v1/ws`: the frames clients send and the frames the
gateway sends) and the Kafka cluster Parley's roles share (its topics, their keys and events;
internal, never reachable by clients). `tests/test_asyncapi.py` parses the document with the
AsyncAPI parser and checks every frame the server sends in the suite against it."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from schemas import events
from schemas.events import ALL_EVENTS
from schemas.frames import ALL_FRAMES
from schemas.settings import Settings
from topics.definitions import (
    Topic,
    audit_topic,
    dead_letter_topic,
    gateways_topic,
    inbox_topic,
    messages_topic,
    presence_changes_topic,
    presence_topic,
    signals_topic,
    stored_topic,
)

SOCKET = "socket"
KAFKA_BINDING = "0.5.0"
# The topics as `parley topics` creates them with the default settings (not this process's
# environment): the document is the same from every gateway.
_DEFAULTS = Settings.model_construct()

# What each topic carries, who writes it and who reads it; a key other than the topic's own
# is named with its event. The dead-letter topic carries any record, as it was read.
_TOPICS: list[tuple[Topic, str, str, list[tuple[type[BaseModel], str | None]]]] = [
    (
        messages_topic(_DEFAULTS),
        "gateways (sends, changes, member lists)",
        "processors (the pipeline)",
        [
            (events.MessageSendV1, None),
            (events.MessageChangeV1, None),
            (events.ChannelMembersV1, None),
        ],
    ),
    (
        inbox_topic(_DEFAULTS),
        "processors (fan-out, signals), gateways (revocations, suspensions, membership changes)",
        "gateways (live delivery), processors (push notifications)",
        [
            (events.InboxMessageV1, None),
            (events.InboxSignalV1, None),
            (events.DeviceRevokedV1, "the user id"),
            (events.UserSuspendedV1, "the user id"),
            (events.InboxMembershipV1, "channel_id, or the user id when there is none"),
        ],
    ),
    (
        stored_topic(_DEFAULTS),
        "processors (after the store write)",
        "processors (search index), `parley replay`",
        [(events.StoredMessageV1, None)],
    ),
    (
        dead_letter_topic(_DEFAULTS),
        "processors (events that can never be handled, raw, with an `x-parley-error` header)",
        "operators (`parley tap parley.messages.dlq.v1`)",
        [],
    ),
    (
        presence_topic(_DEFAULTS),
        "gateways",
        "processors (presence)",
        [(events.PresenceEventV1, None), (events.PresenceSeenV1, "seen/<gateway_id>")],
    ),
    (
        presence_changes_topic(_DEFAULTS),
        "processors (presence), gateways (access changes)",
        "gateways (presence subscriptions)",
        [(events.PresenceChangedV1, None), (events.PresenceAccessChangedV1, "access/<user_id>")],
    ),
    (
        gateways_topic(_DEFAULTS),
        "gateways (every registry_interval_s)",
        "gateways (discovery)",
        [(events.GatewayAnnouncedV1, None)],
    ),
    (
        signals_topic(_DEFAULTS),
        "gateways (read markers, typing)",
        "processors (signals relay)",
        [(events.ReadMovedV1, None), (events.TypingV1, None)],
    ),
    (
        audit_topic(_DEFAULTS),
        "gateways (the operator API, after each action)",
        "operators (`parley tap parley.audit.v1`)",
        [(events.AdminActionV1, "target, or `operator` when there is none")],
    ),
]

# A client frame answered by a frame of its own (or an `error` naming it in `ref`).
_REPLIES = {
    "client.hello.v1": "server.welcome.v1",
    "client.send.v1": "server.accepted.v1",
    "client.edit.v1": "server.accepted.v1",
    "client.delete.v1": "server.accepted.v1",
    "client.react.v1": "server.accepted.v1",
}


@cache
def document() -> dict[str, Any]:
    """The AsyncAPI document (made once)."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, model in ALL_FRAMES.items():
        client = name.startswith("client.")
        messages[name] = _message(name, model, "validation" if client else "serialization", schemas)
    for name, model in ALL_EVENTS.items():
        messages[name] = _message(name, model, "serialization", schemas)
    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "A dead letter",
        "summary": "A record that could never be handled, as it was read (any bytes).",
        "payload": {},
        "headers": {
            "type": "object",
            "properties": {"x-parley-error": {"type": "string", "description": "why"}},
        },
    }
    channels = {SOCKET: _socket_channel()}
    operations = _socket_operations()
    for topic, writers, readers, carried in _TOPICS:
        names = [_name_of(model) for model, _ in carried] or ["dead_letter"]
        for model, key in carried:
            message = messages[_name_of(model)]
            message["bindings"] = {
                "kafka": {
                    "key": {"type": "string", "description": key or topic.key},
                    "bindingVersion": KAFKA_BINDING,
                }
            }
        channels[topic.name] = _topic_channel(topic, writers, readers, names)
        operations[f"produce.{topic.name}"] = _operation("send", topic.name, names, writers)
        operations[f"consume.{topic.name}"] = _operation("receive", topic.name, names, readers)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley real-time protocol",
            "version": "1",
            "description": (
                "The WebSocket frames between clients and a gateway, and the events on the "
                "Kafka topics between Parley's gateways and processors (internal). "
                "Described in prose in docs/protocol.md and docs/architecture.md; the HTTP "
                "API is the OpenAPI document at /v1/openapi.json."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": "{host}",
                "protocol": "ws",
                "description": "Any gateway; `GET /v1/discovery` says which to prefer.",
                "variables": {"host": {"default": "localhost:8080"}},
            },
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The cluster the roles share (PARLEY_KAFKA_BOOTSTRAP); not "
                "reachable by clients.",
                "variables": {"bootstrap": {"default": "localhost:9092"}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _name_of(model: type[BaseModel]) -> str:
    return next(name for name, m in {**ALL_FRAMES, **ALL_EVENTS}.items() if m is model)


def _message(
    name: str,
    model: type[BaseModel],
    mode: Literal["validation", "serialization"],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    """The message object of a model, its payload (and the models it nests) in `schemas`."""
    schema = model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    for nested, definition in schema.pop("$defs", {}).items():
        definition = _draft7(definition)
        assert schemas.setdefault(nested, definition) == definition, f"{nested} differs"
    schemas[name] = _draft7(schema)
    doc = inspect.cleandoc(model.__doc__ or "") if model.__doc__ != BaseModel.__doc__ else ""
    type_ = schema["properties"]["type"].get("const", name)
    message: dict[str, Any] = {
        "name": name,
        "title": type_,
        "payload": {"$ref": f"#/components/schemas/{name}"},
    }
    if doc:
        message["summary"] = doc.split("\n\n")[0].replace("\n", " ")
        message["description"] = doc
    return message


def _draft7(schema: Any) -> Any:
    """A pydantic (draft 2020-12) schema in the draft-07 terms AsyncAPI schemas extend: a
    tuple's `prefixItems` become `items` as a list."""
    if isinstance(schema, list):
        return [_draft7(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _draft7(v) for k, v in schema.items()}
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = False
    return out


def _socket_channel() -> dict[str, Any]:
    return {
        "address": "/v1/ws",
        "title": "A client's WebSocket",
        "description": (
            "One JSON object per text frame, named by `type`. The client says `hello` first "
            "(its token, its cursors); the gateway answers `welcome`, syncs what was missed "
            "(`message`, `edit`, `delete`, `reaction` frames), sends `synced`, then live "
            "frames. The gateway closes with 4001 (no valid hello, a revoked device, an "
            "expired token), 4003 (a suspended account), 4002 (idle), 4008 (a slow "
            "consumer), 4009 (too many sockets of the device), 1009 (a frame too large), 1011 (the database failed during the "
            'sync) or 1012 (draining): docs/protocol.md, "Close codes".'
        ),
        "servers": [{"$ref": "#/servers/gateway"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in ALL_FRAMES},
        "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
    }


def _socket_operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for name in ALL_FRAMES:
        client = name.startswith("client.")
        action: Literal["send", "receive"] = "receive" if client else "send"
        who = "A client sends it; the gateway reads it." if client else "The gateway sends it."
        operations[name] = _operation(action, SOCKET, [name], who)
        reply = _REPLIES.get(name)
        if reply is not None:
            operations[name]["reply"] = {
                "channel": {"$ref": f"#/channels/{SOCKET}"},
                "messages": [
                    {"$ref": f"#/channels/{SOCKET}/messages/{reply}"},
                    {"$ref": f"#/channels/{SOCKET}/messages/server.error.v1"},
                ],
            }
    return operations


def _operation(
    action: Literal["send", "receive"], channel: str, names: list[str], description: str
) -> dict[str, Any]:
    pointer = channel.replace("~", "~0").replace("/", "~1")
    return {
        "action": action,
        "description": description,
        "channel": {"$ref": f"#/channels/{pointer}"},
        "messages": [{"$ref": f"#/channels/{pointer}/messages/{n}"} for n in names],
    }


def _topic_channel(topic: Topic, writers: str, readers: str, names: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for option, value in topic.config.items():
        if option == "cleanup.policy":
            config[option] = value.split(",")
        elif option in ("retention.ms", "retention.bytes", "max.message.bytes"):
            config[option] = int(value)
    return {
        "address": topic.name,
        "title": topic.name,
        "description": (
            f"Key: {topic.key}. Written by {writers}; read by {readers}. Partitions and "
            "retention as `parley topics` creates them by default (schemas/settings.py)."
        ),
        "servers": [{"$ref": "#/servers/kafka"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "topicConfiguration": config,
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
