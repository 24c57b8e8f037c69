"""Names for ids, as far as the API tells them: the user's own name and their friends' (the
only usernames `GET /v1/friends` gives; no call finds a user by name), channel titles, channels
found by id or name, and how a message reads on one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from parley_client import Authenticated, Channel, Client, Message


class NotFound(Exception):
    """A channel or user named on the command line that the user's lists do not hold."""


def is_id(text: str) -> bool:
    """An id as the protocol writes them: ASCII decimal digits, no leading zero."""
    return text.isascii() and text.isdigit() and not text.startswith("0") and len(text) <= 19


@dataclass(slots=True)
class Directory:
    me: str | None
    """The user's own id (None when only a token is known)."""
    usernames: dict[str, str] = field(default_factory=dict)
    """user_id -> username, for the user and everyone on their friends list."""
    friends: set[str] = field(default_factory=set)
    """Accepted friends: the only users whose presence can be watched."""

    @classmethod
    async def load(
        cls,
        client: Client,
        auth: Authenticated,
        me: str | None = None,
        my_name: str | None = None,
    ) -> Directory:
        directory = cls(me, {me: my_name} if me and my_name else {})
        await directory.refresh(client, auth)
        return directory

    async def refresh(self, client: Client, auth: Authenticated) -> None:
        """Read the friends list again (requests in both directions name users too)."""
        for friend in await client.friends(auth):
            self.usernames[friend["user_id"]] = friend["username"]
            if friend["status"] == "friend":
                self.friends.add(friend["user_id"])
            else:
                self.friends.discard(friend["user_id"])

    def name_of(self, user_id: str) -> str:
        return self.usernames.get(user_id, f"user {user_id}")

    def user_named(self, name: str) -> str:
        """The id of the user called `name` (a friend or a request), or `name` itself when it
        is an id. NotFound otherwise: the API looks users up by id only."""
        for user_id, username in self.usernames.items():
            if username == name:
                return user_id
        if is_id(name):
            return name
        raise NotFound(
            f"no user {name!r} among your friends: the API finds users by id only, so name a"
            " friend (or a pending request) or give the user id"
        )

    def others(self, channel: Channel) -> list[str]:
        return [m for m in channel["members"] if m != self.me]

    def title(self, channel: Channel) -> str:
        if channel["type"] == "group":
            return f"#{channel.get('name', channel['channel_id'])}"
        return " & ".join(self.name_of(m) for m in self.others(channel)) or "yourself"

    def find_channel(self, channels: list[Channel], key: str) -> Channel:
        """The channel whose id, group name (`team` or `#team`) or direct partner is `key`."""
        by_id = [c for c in channels if c["channel_id"] == key]
        by_name = [
            c
            for c in channels
            if key.removeprefix("#") == c.get("name")
            or (c["type"] == "direct" and key in (self.name_of(m) for m in self.others(c)))
        ]
        found = by_id or by_name
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound(f"no channel {key!r}: use its id, a group's name or a friend's name")
        ids = ", ".join(c["channel_id"] for c in found)
        raise NotFound(f"{len(found)} channels are called {key!r}: use the id ({ids})")

    def line(self, message: Message, *, with_id: bool = False) -> str:
        """`[12:03] alice: text`, the time local; lines after the first indented."""
        sent = datetime.fromisoformat(message["sent_at"].replace("Z", "+00:00")).astimezone()
        text = message["text"].replace("\n", "\n    ")
        head = f"{message['message_id']} " if with_id else ""
        return f"{head}[{sent:%H:%M}] {self.name_of(message['sender_id'])}: {text}"
