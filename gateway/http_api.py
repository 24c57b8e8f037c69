"""The HTTP API (SPEC §2): each route parses the request and calls one domain function."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import accounts, channels, friends, push
from gateway.connection import Services
from gateway.encoding import json_response
from gateway.errors import ApiError, invalid, require_id
from gateway.presence import authorize, snapshot
from storage.protocols import Device

MAX_BODY_BYTES = 64 * 1024


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _too_large() -> ApiError:
    return ApiError(413, "too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")


async def _body(request: Request) -> dict[str, Any]:
    # Counted while read, and refused at the limit: a body is never held whole before the check.
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise invalid("the body must be JSON") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


async def _device(request: Request) -> Device:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return await accounts.authenticate(
        _services(request).stores.accounts, token.strip() if scheme.lower() == "bearer" else None
    )


async def create_user(request: Request) -> Response:
    body = await _body(request)
    services = _services(request)
    user_id, username = await accounts.sign_up(
        services.stores.accounts,
        services.passwords,
        body.get("username"),
        body.get("password"),
        body.get("display_name"),
    )
    return json_response({"user_id": user_id, "username": username}, 201)


async def create_session(request: Request) -> Response:
    body = await _body(request)
    services = _services(request)
    login = await accounts.log_in(
        services.stores.accounts,
        services.passwords,
        body.get("username"),
        body.get("password"),
        body.get("device_name"),
    )
    return json_response(
        {
            "token": login.token,
            "user_id": login.device.user_id,
            "device_id": login.device.device_id,
        },
        201,
    )


async def delete_session(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    await services.stores.accounts.revoke_device(device.device_id)
    await services.stores.push.remove_endpoint(device.device_id)
    services.publisher.presence("logout", device.user_id, device.device_id, "")
    # Every gateway serving the device closes its sockets (this one included).
    await services.publisher.device_revoked(device.user_id, device.device_id)
    for connection in services.registry.of_user(device.user_id):
        if connection.device_id == device.device_id:
            connection.revoke()
    return Response(status_code=204)


async def discovery(request: Request) -> Response:
    device = await _device(request)
    urls = _services(request).gateways.urls_for(device.user_id)
    return json_response({"gateways": [{"url": url} for url in urls]})


async def create_channel(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    services = _services(request)
    if body.get("type") == "direct":
        channel, created = await channels.open_direct(
            services.stores.channels, device.user_id, body.get("user_id")
        )
        return json_response(channels.channel_body(channel), 201 if created else 200)
    if body.get("type") == "group":
        channel = await channels.create_group(
            services.stores.channels,
            services.publisher,
            device.user_id,
            body.get("name"),
            body.get("member_ids"),
        )
        return json_response(channels.channel_body(channel), 201)
    raise invalid("type must be 'direct' or 'group'")


async def list_channels(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    found = await channels.list_channels(
        services.stores.channels, services.stores.messages, device.user_id
    )
    return json_response({"channels": found})


async def add_member(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    services = _services(request)
    await channels.add_member(
        services.stores.channels,
        services.publisher,
        device.user_id,
        require_id(request.path_params["channel_id"], "channel_id"),
        body.get("user_id"),
    )
    return Response(status_code=204)


async def remove_member(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    await channels.remove_member(
        services.stores.channels,
        services.publisher,
        device.user_id,
        require_id(request.path_params["channel_id"], "channel_id"),
        require_id(request.path_params["user_id"], "user_id"),
    )
    return Response(status_code=204)


async def channel_messages(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    found = await channels.history(
        services.stores.channels,
        services.stores.messages,
        device.user_id,
        require_id(request.path_params["channel_id"], "channel_id"),
        dict(request.query_params),
    )
    return json_response({"messages": [m.wire() for m in found]})


async def put_friend(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    other = require_id(request.path_params["user_id"], "user_id")
    state = await friends.befriend(services.stores.friends, device.user_id, other)
    return json_response({"user_id": other, "status": state})


async def delete_friend(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    other = require_id(request.path_params["user_id"], "user_id")
    exists = bool(await services.stores.accounts.existing_users([other]))
    await friends.unfriend(
        services.stores.friends, services.publisher, exists, device.user_id, other
    )
    return Response(status_code=204)


async def list_friends(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    found = await friends.friend_list(
        services.stores.friends, services.stores.presence, device.user_id
    )
    return json_response({"friends": found})


async def get_presence(request: Request) -> Response:
    device = await _device(request)
    services = _services(request)
    raw = request.query_params.get("user_ids", "")
    wanted = [require_id(u.strip(), "user_ids[]") for u in raw.split(",") if u.strip()]
    if not wanted:
        raise invalid("user_ids is required: a comma-separated list")
    allowed = await authorize(
        services.stores.friends,
        device.user_id,
        wanted,
        services.settings.max_presence_subscriptions,
    )
    return json_response({"presence": await snapshot(services.stores.presence, allowed)})


async def put_push_endpoint(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    endpoint = await push.register(
        _services(request).stores.push, device, body.get("platform"), body.get("token")
    )
    return json_response(push.endpoint_body(endpoint))


async def delete_push_endpoint(request: Request) -> Response:
    device = await _device(request)
    await _services(request).stores.push.remove_endpoint(device.device_id)
    return Response(status_code=204)


async def list_push_endpoints(request: Request) -> Response:
    device = await _device(request)
    found = await _services(request).stores.push.endpoints([device.user_id])
    return json_response(
        {"endpoints": [push.endpoint_body(e) for e in found.get(device.user_id, [])]}
    )


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "connections": _services(request).registry.count()})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/v1/users", create_user, methods=["POST"]),
    Route("/v1/sessions", create_session, methods=["POST"]),
    Route("/v1/sessions/current", delete_session, methods=["DELETE"]),
    Route("/v1/discovery", discovery, methods=["GET"]),
    Route("/v1/channels", create_channel, methods=["POST"]),
    Route("/v1/channels", list_channels, methods=["GET"]),
    Route("/v1/channels/{channel_id}/members", add_member, methods=["POST"]),
    Route("/v1/channels/{channel_id}/members/{user_id}", remove_member, methods=["DELETE"]),
    Route("/v1/channels/{channel_id}/messages", channel_messages, methods=["GET"]),
    Route("/v1/friends", list_friends, methods=["GET"]),
    Route("/v1/friends/{user_id}", put_friend, methods=["PUT"]),
    Route("/v1/friends/{user_id}", delete_friend, methods=["DELETE"]),
    Route("/v1/presence", get_presence, methods=["GET"]),
    Route("/v1/push/endpoints", list_push_endpoints, methods=["GET"]),
    Route("/v1/push/endpoints/current", put_push_endpoint, methods=["PUT"]),
    Route("/v1/push/endpoints/current", delete_push_endpoint, methods=["DELETE"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
