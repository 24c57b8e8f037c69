"""Live presence for sockets: the gateway follows the presence changes of watched users.

Who may watch whom is decided by `gateway/commands/presence.py`. Once a socket's
`presence.subscribe` is allowed, the gateway follows the presence-change partitions of those
users (gateway/follower.py), reads a snapshot from the store, and forwards later changes. Following before reading means no
change is missed between the two; a status is sent only when it differs from the last one sent
on that socket, so one seen twice is sent once.

A subscription lasts while the right to it does. Ending a friendship or leaving a shared
channel publishes `presence.access_changed` in the watched user's partition of the changes
topic, which every gateway with a watcher of that user follows; the gateway checks those
watchers again and drops the subscriptions no longer allowed, so they learn nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import orjson

from gateway import metrics
from gateway.encoding import frame
from gateway.follower import PartitionFollower
from schemas.settings import Settings
from storage.protocols import FriendStore
from topics.definitions import presence_changes_topic

log = logging.getLogger("parley.presence")


class Watcher(Protocol):
    @property
    def user_id(self) -> str: ...

    def presence(self, user_id: str, status: str, text: str) -> None: ...


def presence_body(user_id: str, status: str, last_active_at: str | None) -> dict[str, Any]:
    return {"user_id": user_id, "status": status, "last_active_at": last_active_at}


class PresenceHub:
    def __init__(self, settings: Settings, friends: FriendStore) -> None:
        self._follower = PartitionFollower(settings, presence_changes_topic(settings), self)
        self._friends = friends
        self._watching: dict[str, set[Watcher]] = {}
        self._subscriptions: dict[Watcher, list[str]] = {}
        self._checks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._follower.start()

    async def stop(self) -> None:
        for task in list(self._checks):
            task.cancel()
        await self._follower.stop()

    async def subscribe(self, watcher: Watcher, user_ids: list[str]) -> None:
        """Replace the watcher's subscriptions (returns once changes for them will arrive)."""
        await self.unsubscribe(watcher)
        watched: list[str] = []
        try:
            for user_id in user_ids:
                watched.append(user_id)  # the follower counts a watch even if it then fails
                await self._follower.watch(user_id)
        except BaseException:
            for user_id in watched:
                await self._follower.unwatch(user_id)
            raise
        self._subscriptions[watcher] = user_ids
        for user_id in user_ids:
            self._watching.setdefault(user_id, set()).add(watcher)

    async def unsubscribe(self, watcher: Watcher) -> None:
        for user_id in self._subscriptions.pop(watcher, []):
            await self._unwatch(watcher, user_id)

    async def _unwatch(self, watcher: Watcher, user_id: str) -> None:
        watchers = self._watching.get(user_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watching[user_id]
        await self._follower.unwatch(user_id)

    def __call__(self, raw: bytes) -> None:
        """A record of the presence-changes topic."""
        try:
            event = orjson.loads(raw)
            if event["type"] == "presence.access_changed" and event["v"] == 1:
                self._access_changed(event["user_id"], set(event["watcher_ids"]))
                return
            if event["type"] != "presence.changed" or event["v"] != 1:
                raise KeyError(event["type"])
            user_id, status, last_active_at = (
                event["user_id"],
                event["status"],
                event["last_active_at"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("skipping an unreadable presence change")
            return
        watchers = self._watching.get(user_id)
        if not watchers:
            return
        text = frame({"type": "presence", **presence_body(user_id, status, last_active_at)})
        for watcher in list(watchers):
            watcher.presence(user_id, status, text)

    def _access_changed(self, user_id: str, watcher_ids: set[str]) -> None:
        watchers = [w for w in self._watching.get(user_id, ()) if w.user_id in watcher_ids]
        if watchers:
            task = asyncio.create_task(self._check_again(user_id, watchers))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check_again(self, user_id: str, watchers: list[Watcher]) -> None:
        """Drop `user_id` from the subscriptions of those watchers no longer allowed it."""
        try:
            for watcher_id in {w.user_id for w in watchers}:
                if user_id in await self._friends.visible_to(watcher_id, [user_id]):
                    continue
                for watcher in watchers:
                    if watcher.user_id == watcher_id:
                        await self._drop(watcher, user_id)
        except Exception:
            log.exception("checking presence subscriptions again failed")

    async def _drop(self, watcher: Watcher, user_id: str) -> None:
        subscribed = self._subscriptions.get(watcher)
        if subscribed is None or user_id not in subscribed:
            return  # it unsubscribed or subscribed anew meanwhile
        subscribed.remove(user_id)
        await self._unwatch(watcher, user_id)
        metrics.PRESENCE_DROPPED.inc()
