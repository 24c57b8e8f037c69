"""The HTTP API (SPEC §2): each route reads its request, calls one command
(`gateway/commands/`) and writes its answer. `ENDPOINTS`, at the end, lists every route once:
the Starlette routes and the OpenAPI document (`gateway/openapi.py`) are both made from it."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway import asyncapi, openapi
from gateway.commands import (
    accounts,
    admin,
    channels,
    export,
    friends,
    invites,
    moderation,
    notifications,
    presence,
    push,
    reads,
    search,
    settings,
)
from gateway.encoding import json_response
from gateway.errors import ApiError, invalid
from gateway.openapi import ID
from gateway.openapi import Endpoint as E
from gateway.services import Services
from schemas.http import (
    AccountSettings,
    ChannelNotifications,
    GroupSettings,
    MemberRole,
    NewChannel,
    NewInvite,
    NewMember,
    NewReport,
    NewSession,
    NewUser,
    ProfileChange,
    PushEndpointBody,
    SearchResults,
)
from schemas.ids import iso_ms, new_id
from schemas.limits import (
    BULK_DELETE_LIMIT_MAX,
    HISTORY_LIMIT_MAX,
    MAX_SEARCH_QUERY_CHARS,
    REPORTS_LIMIT_MAX,
    SEARCH_LIMIT_MAX,
)
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


def _require_json(request: Request) -> None:
    """Sign-up and log-in take `Content-Type: application/json` (optionally `; charset=utf-8`)
    and nothing else, judged before anything is read or counted: a page of another site can
    post a form (urlencoded, multipart or text/plain) to them without the browser asking, but
    not JSON, so a form cannot spend a victim's log-in attempts."""
    media, _, parameters = request.headers.get("content-type", "").partition(";")
    charset = parameters.strip().rstrip(";").lower().replace(" ", "")
    if media.strip().lower() != "application/json" or charset not in _JSON_CHARSETS:
        raise ApiError(
            415,
            "unsupported_media_type",
            "this call takes a JSON body: send Content-Type: application/json",
        )


_JSON_CHARSETS = {"", "charset=utf-8", 'charset="utf-8"'}


def _address(request: Request) -> str:
    """The client's address, as the socket sees it (a proxy in front is the client)."""
    return request.client.host if request.client is not None else ""


async def _device(request: Request) -> Device:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return await accounts.authenticate(
        _services(request).stores.accounts, token.strip() if scheme.lower() == "bearer" else None
    )


async def create_user(request: Request) -> Response:
    body = await _body(request)
    user_id, username = await accounts.sign_up(
        _services(request),
        _address(request),
        body.get("username"),
        body.get("password"),
        body.get("display_name"),
    )
    return json_response({"user_id": user_id, "username": username}, 201)


async def create_session(request: Request) -> Response:
    body = await _body(request)
    login = await accounts.log_in(
        _services(request),
        _address(request),
        body.get("username"),
        body.get("password"),
        body.get("device_name"),
    )
    return json_response(_session_body(login), 201)


def _session_body(login: accounts.Login) -> dict[str, Any]:
    device = login.device
    body: dict[str, Any] = {
        "token": login.token,
        "user_id": device.user_id,
        "device_id": device.device_id,
        "expires_at": iso_ms(device.expires_at_ms),
    }
    if login.signed_out:
        body["signed_out"] = list(login.signed_out)  # devices this login signed out (the cap)
    return body


async def delete_session(request: Request) -> Response:
    await accounts.log_out(_services(request), await _device(request))
    return Response(status_code=204)


async def renew_session(request: Request) -> Response:
    login = await accounts.renew_token(_services(request), await _device(request))
    return json_response(_session_body(login))


async def list_devices(request: Request) -> Response:
    caller = await _device(request)
    found = await accounts.list_devices(_services(request), caller)
    return json_response(
        {
            "devices": [
                {
                    "device_id": d.device_id,
                    "name": d.name,
                    "created_at": iso_ms(d.created_at_ms),
                    "expires_at": iso_ms(d.expires_at_ms),
                    "current": d.device_id == caller.device_id,
                }
                for d in found
            ]
        }
    )


async def delete_device(request: Request) -> Response:
    caller = await _device(request)
    await accounts.revoke_device(_services(request), caller, request.path_params["device_id"])
    return Response(status_code=204)


async def delete_devices(request: Request) -> Response:
    await accounts.revoke_all_devices(_services(request), await _device(request))
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
        channel, created = await channels.open_direct(services, device, body.get("user_id"))
        return json_response(channels.channel_body(channel), 201 if created else 200)
    if body.get("type") == "group":
        channel = await channels.create_group(
            services,
            device,
            body.get("name"),
            body.get("member_ids"),
            body.get("history_visible", True),
        )
        return json_response(channels.channel_body(channel), 201)
    raise invalid("type must be 'direct' or 'group'")


async def find_user(request: Request) -> Response:
    device = await _device(request)
    query = request.query_params
    if "ids" in query:
        if "username" in query:
            raise invalid("ask by username or by ids, not both")
        found = await accounts.profiles(_services(request), device, query.get("ids"))
        return json_response({"users": found})
    username = query.get("username")
    return json_response(await accounts.find_user(_services(request), device, username))


async def get_user(request: Request) -> Response:
    device = await _device(request)
    user_id = request.path_params["user_id"]
    return json_response(await accounts.profile(_services(request), device, user_id))


async def get_me(request: Request) -> Response:
    device = await _device(request)
    return json_response(await accounts.profile(_services(request), device, device.user_id))


async def patch_me(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    return json_response(await accounts.set_profile(_services(request), device, body))


class _Streamed(StreamingResponse):
    """A streamed answer that calls `done` when it ended, however it ended (read to the end,
    cut by the client, failed), even if its stream never started."""

    def __init__(self, lines: AsyncIterator[bytes], done: Callable[[], None], **kw: Any) -> None:
        super().__init__(lines, **kw)
        self._done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._done()


async def export_me(request: Request) -> Response:
    device = await _device(request)
    found = await export.export_data(_services(request), device)
    disposition = f'attachment; filename="parley-export-{device.user_id}.ndjson"'
    return _Streamed(
        found.lines,
        found.done,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": disposition},
    )


async def list_channels(request: Request) -> Response:
    device = await _device(request)
    found = await channels.list_channels(_services(request), device)
    return json_response({"channels": found})


async def patch_channel(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    channel = await channels.change_group(
        _services(request), device, request.path_params["channel_id"], body
    )
    return json_response(channels.channel_body(channel))


async def put_notifications(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    settings = await notifications.set_notifications(
        _services(request), device, request.path_params["channel_id"], body
    )
    return json_response(settings)


async def channel_receipts(request: Request) -> Response:
    device = await _device(request)
    found = await reads.receipts(_services(request), device, request.path_params["channel_id"])
    return json_response({"receipts": found})


async def get_settings(request: Request) -> Response:
    device = await _device(request)
    return json_response(await settings.account_settings(_services(request), device))


async def put_settings(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    await settings.change_settings(_services(request), device, body)
    return json_response(await settings.account_settings(_services(request), device))


async def add_member(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    await channels.add_member(_services(request), device, request.path_params["channel_id"], body)
    return Response(status_code=204)


async def remove_member(request: Request) -> Response:
    device = await _device(request)
    params = request.path_params
    await channels.remove_member(
        _services(request), device, params["channel_id"], params["user_id"]
    )
    return Response(status_code=204)


async def put_member_role(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    params = request.path_params
    await channels.set_role(
        _services(request), device, params["channel_id"], params["user_id"], body
    )
    return Response(status_code=204)


async def create_invite(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    created = await invites.create_invite(
        _services(request), device, request.path_params["channel_id"], body
    )
    return json_response(created, 201)


async def list_invites(request: Request) -> Response:
    device = await _device(request)
    found = await invites.list_invites(
        _services(request), device, request.path_params["channel_id"]
    )
    return json_response({"invites": [invites.invite_body(i) for i in found]})


async def revoke_invite(request: Request) -> Response:
    device = await _device(request)
    params = request.path_params
    await invites.revoke_invite(
        _services(request), device, params["channel_id"], params["invite_id"]
    )
    return Response(status_code=204)


async def preview_invite(request: Request) -> Response:
    device = await _device(request)
    found = await invites.preview(_services(request), device, request.path_params["code"])
    return json_response(found)


async def join_by_invite(request: Request) -> Response:
    device = await _device(request)
    channel = await invites.join(_services(request), device, request.path_params["code"])
    return json_response(channel)


async def channel_messages(request: Request) -> Response:
    device = await _device(request)
    found = await channels.history(
        _services(request),
        device,
        request.path_params["channel_id"],
        dict(request.query_params),
    )
    return json_response({"messages": [m.wire() for m in found]})


async def channel_pins(request: Request) -> Response:
    device = await _device(request)
    found = await channels.pins(_services(request), device, request.path_params["channel_id"])
    return json_response({"messages": [m.wire() for m in found]})


async def search_messages(request: Request) -> Response:
    device = await _device(request)
    found = await search.search(_services(request), device, dict(request.query_params))
    return json_response(found)


async def put_friend(request: Request) -> Response:
    device = await _device(request)
    other = request.path_params["user_id"]
    state = await friends.befriend(_services(request), device, other)
    return json_response({"user_id": other, "status": state})


async def delete_friend(request: Request) -> Response:
    device = await _device(request)
    await friends.unfriend(_services(request), device, request.path_params["user_id"])
    return Response(status_code=204)


async def put_block(request: Request) -> Response:
    device = await _device(request)
    await friends.block(_services(request), device, request.path_params["user_id"])
    return Response(status_code=204)


async def delete_block(request: Request) -> Response:
    device = await _device(request)
    await friends.unblock(_services(request), device, request.path_params["user_id"])
    return Response(status_code=204)


async def list_blocks(request: Request) -> Response:
    found = await friends.blocks(_services(request), await _device(request))
    return json_response({"blocks": [{"user_id": u} for u in found]})


async def list_friends(request: Request) -> Response:
    device = await _device(request)
    return json_response({"friends": await friends.friend_list(_services(request), device)})


async def get_presence(request: Request) -> Response:
    device = await _device(request)
    raw = request.query_params.get("user_ids", "")
    wanted = [u.strip() for u in raw.split(",") if u.strip()]
    found = await presence.look_up(_services(request), device, wanted)
    return json_response({"presence": found})


async def put_push_endpoint(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    endpoint = await push.register_endpoint(_services(request), device, body)
    return json_response(push.endpoint_body(endpoint))


async def delete_push_endpoint(request: Request) -> Response:
    await push.remove_endpoint(_services(request), await _device(request))
    return Response(status_code=204)


async def list_push_endpoints(request: Request) -> Response:
    found = await push.list_endpoints(_services(request), await _device(request))
    return json_response({"endpoints": [push.endpoint_body(e) for e in found]})


async def post_report(request: Request) -> Response:
    device = await _device(request)
    body = await _body(request)
    params = request.path_params
    found, created = await moderation.report(
        _services(request), device, params["channel_id"], params["message_id"], body
    )
    return json_response(moderation.report_body(found, full=True), 201 if created else 200)


async def get_channel_reports(request: Request) -> Response:
    device = await _device(request)
    found = await moderation.channel_reports(
        _services(request), device, request.path_params["channel_id"], dict(request.query_params)
    )
    return json_response({"reports": [moderation.report_body(r, full=False) for r in found]})


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _operator(request: Request) -> str:
    """The operator's request: its id (the client's `X-Request-Id` if it is a short token,
    else a new one), once the bearer token is the admin token (compared in constant time).
    No admin token configured: 404 to everyone, as for a route that does not exist."""
    expected = _services(request).settings.admin_token
    if expected is None:
        raise ApiError(404, "not_found", "not found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "missing or wrong admin token")
    asked = request.headers.get("x-request-id", "")
    return asked if _REQUEST_ID.fullmatch(asked) else new_id()


def _with_request_id(response: Response, request_id: str) -> Response:
    response.headers["x-request-id"] = request_id  # as on the audit topic
    return response


async def admin_reports(request: Request) -> Response:
    request_id = _operator(request)
    found = await admin.list_reports(_services(request), request_id, dict(request.query_params))
    body = {"reports": [moderation.report_body(r, full=True) for r in found]}
    return _with_request_id(json_response(body), request_id)


async def admin_suspend(request: Request) -> Response:
    request_id = _operator(request)
    await admin.suspend(_services(request), request_id, request.path_params["user_id"])
    return _with_request_id(Response(status_code=204), request_id)


async def admin_unsuspend(request: Request) -> Response:
    request_id = _operator(request)
    await admin.unsuspend(_services(request), request_id, request.path_params["user_id"])
    return _with_request_id(Response(status_code=204), request_id)


async def admin_delete_messages(request: Request) -> Response:
    request_id = _operator(request)
    deleted, cursor = await admin.delete_messages(
        _services(request),
        request_id,
        request.path_params["user_id"],
        dict(request.query_params),
    )
    return _with_request_id(json_response({"deleted": deleted, "next": cursor}), request_id)


async def openapi_document(request: Request) -> Response:
    return json_response(document())


async def asyncapi_document(request: Request) -> Response:
    return json_response(asyncapi.document())


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "connections": _services(request).registry.count()})


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    settings = _services(request).settings
    if settings.metrics_port is not None:
        # Served on its own address (gateway/server.py), not to the public.
        raise ApiError(404, "not_found", "not found")
    if not settings.metrics_public and not _loopback(_address(request)):
        # On the public port, to this machine only unless configured otherwise.
        raise ApiError(404, "not_found", "not found")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


_REPORTS_PAGE = {
    "before": ID,
    "limit": {"type": "integer", "minimum": 1, "maximum": REPORTS_LIMIT_MAX},
}
_IDS_PATTERN = "^[1-9][0-9]{0,18}(,[1-9][0-9]{0,18}){0,99}$"
_USERNAME = {"type": "string", "pattern": "^[a-z0-9_.-]{3,32}$"}
_INVITE_CODE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"}

# The HTTP API, one record a route: the Starlette routes (`routes`) and the OpenAPI document
# (`document`) are both made from it.
ENDPOINTS = [
    E("post", "/v1/users", create_user, "Sign up", NewUser, auth=False, json_only=True),
    E(
        "get",
        "/v1/users",
        find_user,
        "Find a user by username, or the profiles of up to 100 user ids",
        query={"username": _USERNAME, "ids": {"type": "string", "pattern": _IDS_PATTERN}},
    ),
    E("get", "/v1/users/me", get_me, "The caller's profile"),
    E("patch", "/v1/users/me", patch_me, "Set the caller's display name", ProfileChange),
    E(
        "get",
        "/v1/users/me/export",
        export_me,
        "Export the caller's data: account, channels, messages sent (NDJSON, streamed)",
    ),
    E("get", "/v1/users/{user_id}", get_user, "A user's profile, if visible to the caller"),
    E(
        "post",
        "/v1/sessions",
        create_session,
        "Log in: a new device with its token",
        NewSession,
        auth=False,
        json_only=True,
    ),
    E("delete", "/v1/sessions/current", delete_session, "Log out this device"),
    E("post", "/v1/sessions/current/renew", renew_session, "A new token for this device"),
    E("get", "/v1/devices", list_devices, "The account's devices (expired ones too)"),
    E("delete", "/v1/devices", delete_devices, "Revoke every device of the account"),
    E("delete", "/v1/devices/{device_id}", delete_device, "Revoke one device"),
    E("get", "/v1/discovery", discovery, "Gateways, best first"),
    E(
        "post",
        "/v1/channels",
        create_channel,
        "Open a direct channel or create a group",
        NewChannel,
    ),
    E("get", "/v1/channels", list_channels, "The caller's channels"),
    E(
        "patch",
        "/v1/channels/{channel_id}",
        patch_channel,
        "Change a group's settings",
        GroupSettings,
    ),
    E("post", "/v1/channels/{channel_id}/members", add_member, "Add a group member", NewMember),
    E(
        "put",
        "/v1/channels/{channel_id}/notifications",
        put_notifications,
        "Set the caller's notification level and mute for a channel",
        ChannelNotifications,
    ),
    E(
        "delete",
        "/v1/channels/{channel_id}/members/{user_id}",
        remove_member,
        "Remove, leave or hide",
    ),
    E(
        "put",
        "/v1/channels/{channel_id}/members/{user_id}",
        put_member_role,
        "Set a member's role",
        MemberRole,
    ),
    E(
        "post",
        "/v1/channels/{channel_id}/invites",
        create_invite,
        "Make an invite link to a group",
        NewInvite,
    ),
    E("get", "/v1/channels/{channel_id}/invites", list_invites, "A group's invite links"),
    E(
        "delete",
        "/v1/channels/{channel_id}/invites/{invite_id}",
        revoke_invite,
        "Revoke an invite link",
    ),
    E(
        "get",
        "/v1/invites/{code}",
        preview_invite,
        "The group an invite link leads to",
        path_schemas={"code": _INVITE_CODE},
    ),
    E(
        "post",
        "/v1/invites/{code}/join",
        join_by_invite,
        "Join a group by an invite link",
        path_schemas={"code": _INVITE_CODE},
    ),
    E(
        "get",
        "/v1/channels/{channel_id}/messages",
        channel_messages,
        "A page of history",
        query={
            "before": ID,
            "after": ID,
            "around": ID,
            "limit": {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT_MAX},
            "thread": ID,
        },
    ),
    E(
        "get",
        "/v1/channels/{channel_id}/pins",
        channel_pins,
        "The channel's pinned messages, the most recently pinned first",
    ),
    E(
        "get",
        "/v1/search",
        search_messages,
        "Search the caller's messages, newest first",
        query={
            "q": {"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_QUERY_CHARS},
            "channel_id": ID,
            "before": ID,
            "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX},
        },
        answer=SearchResults,
    ),
    E(
        "get",
        "/v1/channels/{channel_id}/receipts",
        channel_receipts,
        "How far members have read",
    ),
    E("get", "/v1/settings", get_settings, "The account's settings"),
    E("put", "/v1/settings", put_settings, "Change the account's settings", AccountSettings),
    E("get", "/v1/friends", list_friends, "Friends and requests"),
    E("put", "/v1/friends/{user_id}", put_friend, "Ask or accept"),
    E("delete", "/v1/friends/{user_id}", delete_friend, "Unfriend, cancel or decline"),
    E("get", "/v1/blocks", list_blocks, "Whom the caller blocks"),
    E("put", "/v1/blocks/{user_id}", put_block, "Block a user"),
    E("delete", "/v1/blocks/{user_id}", delete_block, "Lift a block"),
    E(
        "get",
        "/v1/presence",
        get_presence,
        "Friends' presence now",
        query={"user_ids": {"type": "string"}},
    ),
    E("get", "/v1/push/endpoints", list_push_endpoints, "The account's push endpoints"),
    E(
        "put",
        "/v1/push/endpoints/current",
        put_push_endpoint,
        "Register this device's push endpoint",
        PushEndpointBody,
    ),
    E(
        "delete",
        "/v1/push/endpoints/current",
        delete_push_endpoint,
        "Stop pushing to this device",
    ),
    E(
        "post",
        "/v1/channels/{channel_id}/messages/{message_id}/reports",
        post_report,
        "Report a message (once per reporter)",
        NewReport,
    ),
    E(
        "get",
        "/v1/channels/{channel_id}/reports",
        get_channel_reports,
        "A group's reports, for its owners and admins",
        query=_REPORTS_PAGE,
    ),
    E(
        "get",
        "/v1/admin/reports",
        admin_reports,
        "Operator: every report, newest first",
        query=_REPORTS_PAGE,
        auth="admin",
    ),
    E(
        "put",
        "/v1/admin/users/{user_id}/suspension",
        admin_suspend,
        "Operator: suspend a user",
        auth="admin",
    ),
    E(
        "delete",
        "/v1/admin/users/{user_id}/suspension",
        admin_unsuspend,
        "Operator: lift a user's suspension",
        auth="admin",
    ),
    E(
        "post",
        "/v1/admin/users/{user_id}/messages/delete",
        admin_delete_messages,
        "Operator: delete a page of a user's messages",
        query={
            "after": {"type": "string", "pattern": "^[0-9]{1,19}:[0-9]{1,19}$"},
            "limit": {"type": "integer", "minimum": 1, "maximum": BULK_DELETE_LIMIT_MAX},
        },
        auth="admin",
    ),
    E("get", "/v1/openapi.json", openapi_document, "This document", auth=False),
    E(
        "get",
        "/v1/asyncapi.json",
        asyncapi_document,
        "The WebSocket frames and topics (AsyncAPI 3.0)",
        auth=False,
    ),
    E("get", "/healthz", healthz, "Liveness", auth=False),
    E("get", "/metrics", metrics, "Prometheus metrics", auth=False),
]


def _route(endpoint: E) -> Route:
    handler = endpoint.handler

    async def json_only(request: Request) -> Response:
        _require_json(request)
        return await endpoint.handler(request)

    return Route(
        endpoint.path,
        json_only if endpoint.json_only else handler,
        methods=[endpoint.method.upper()],
    )


routes = [_route(e) for e in ENDPOINTS]


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document of `ENDPOINTS` (made once)."""
    return openapi.document(ENDPOINTS)
