"""Names for ids, as far as the API tells them: the user's own name, their friends' (from
`GET /v1/friends`), those looked up by username (`GET /v1/users?username=`) and the profiles
of the people in the user's channels (`GET /v1/users?ids=`), channel titles, channels found by id or name, and how a message and a
search result read on one line. Every name, title and line made here for the screen is rendered
by `terminal.rendering.visible`: what users and the server wrote never reaches the terminal raw."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from parley_client import (
    ApiError,
    Authenticated,
    Channel,
    Client,
    Message,
    SearchResult,
    SnippetPart,
)
from terminal.rendering import one_line, visible

PROFILES_PER_CALL = 100


class NotFound(Exception):
    """A channel or user named on the command line that the user's lists do not hold."""


def marked(snippet: list[SnippetPart]) -> str:
    """A snippet as plain text on one line, each match in [brackets]: `…in [한국]어…`; its
    line feeds spaces, its controls made visible."""
    return "".join(
        f"[{one_line(p['text'])}]" if p["match"] else one_line(p["text"]) for p in snippet
    )


def _time(sent_at: str) -> datetime:
    return datetime.fromisoformat(sent_at.replace("Z", "+00:00")).astimezone()


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
    asked: set[str] = field(default_factory=set)
    """Users whose profiles were asked for (`learn`)."""

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

    async def learn(self, client: Client, auth: Authenticated, user_ids: Iterable[str]) -> None:
        """Ask the server for the usernames not known yet among `user_ids` (the ones the user
        may see: their channels' members, friends, direct contacts)."""
        unknown = list(dict.fromkeys(u for u in user_ids if u not in self.usernames))
        unknown = [u for u in unknown if u not in self.asked]
        self.asked.update(unknown)  # one not visible is not asked for again
        for start in range(0, len(unknown), PROFILES_PER_CALL):
            for card in await client.users(auth, unknown[start : start + PROFILES_PER_CALL]):
                self.usernames[card["user_id"]] = card["username"]

    def name_of(self, user_id: str) -> str:
        """The user's name as the screen shows it (on one line, controls made visible)."""
        return visible(self._username(user_id))

    def _username(self, user_id: str) -> str:
        return self.usernames.get(user_id, f"user {user_id}")

    async def user_named(self, client: Client, auth: Authenticated, name: str) -> str:
        """The id of the user called `name`: a friend, else whoever the server finds by that
        username. NotFound if nobody (or a block stands between the two)."""
        for user_id, username in self.usernames.items():
            if username == name:
                return user_id
        try:
            card = await client.find_user(auth, name)
        except ApiError as exc:
            if exc.code in ("not_found", "invalid"):
                raise NotFound(f"no user {name!r}") from None
            raise
        self.usernames[card["user_id"]] = card["username"]
        return card["user_id"]

    def others(self, channel: Channel) -> list[str]:
        return [m for m in channel["members"] if m != self.me]

    def title(self, channel: Channel) -> str:
        """How the channel is named on screen: `#team`, or the other members' names."""
        if channel["type"] == "group":
            return visible(f"#{channel.get('name', channel['channel_id'])}")
        return " & ".join(self.name_of(m) for m in self.others(channel)) or "yourself"

    async def find_channel(
        self, client: Client, auth: Authenticated, channels: list[Channel], key: str
    ) -> Channel:
        """The channel whose id, group name (`team` or `#team`) or direct partner's username
        is `key` (a partner who is no friend is looked up by username)."""
        found = self._matching(channels, key)
        if not found and not key.startswith("#"):
            with contextlib.suppress(NotFound):
                await self.user_named(client, auth, key)  # learn the name, if it is a user's
                found = self._matching(channels, key)
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound(f"no channel {key!r}: use its id, a group's name or a username")
        ids = ", ".join(c["channel_id"] for c in found)
        raise NotFound(f"{len(found)} channels are called {key!r}: use the id ({ids})")

    def _matching(self, channels: list[Channel], key: str) -> list[Channel]:
        by_id = [c for c in channels if c["channel_id"] == key]
        return by_id or [
            c
            for c in channels
            if key.removeprefix("#") == c.get("name")
            or (c["type"] == "direct" and key in (self._username(m) for m in self.others(c)))
        ]

    def mentions_me(self, message: Message) -> bool:
        """Whether the message (not deleted) mentions the user (`mentions`)."""
        return not message.get("deleted") and self.me in message.get("mentions", ())

    def line(self, message: Message, *, with_id: bool = False, number: int | None = None) -> str:
        """`[12:03] alice: text`, the time local; lines after the first indented; in its latest
        state: `(edited)`, `[deleted]`, and how many reacted with each emoji (`[👍 2]`). Headed
        by the message's id, or by the short number the chat shows (`#3`), and by `@ ` when
        it mentions the user."""
        sent = _time(message["sent_at"])
        if message.get("deleted"):
            text = "[deleted]"
        else:
            text = self.quoted(message) + message["text"].replace("\n", "\n    ")
            if message.get("edited_at"):
                text += " (edited)"
            if reactions := message.get("reactions"):
                counts = " ".join(f"{visible(e)} {len(who)}" for e, who in reactions.items())
                text += f"  [{counts}]"
        if pinner := message.get("pinned_by"):
            text += f"  (pinned by {self.name_of(pinner)})"
        if count := message.get("reply_count"):
            text += f"  ({count} {'reply' if count == 1 else 'replies'}: /thread)"
        head = f"{visible(message['message_id'])} " if with_id else ""
        if number is not None:
            head = f"#{number} "
        if self.mentions_me(message):
            head = f"@ {head}"  # a mention of the user stands out at the start of its line
        line = f"{head}[{sent:%H:%M}] {self.name_of(message['sender_id'])}: {text}"
        return visible(line, multiline=True)

    def quoted(self, message: Message) -> str:
        """A reply's quote, before its text: `[re bob: the question] `, `[re a deleted
        message] `, or `[re an earlier message] ` when the reader may not see it; the quoted
        text on one line, at most 60 characters."""
        if "reply_to" not in message:
            return ""
        quote = message.get("quote")
        if quote is None:
            return "[re an earlier message] "
        if quote.get("deleted"):
            return "[re a deleted message] "
        snippet = quote["text"].replace("\n", " ")
        snippet = snippet[:60] + "…" if len(snippet) > 60 else snippet
        return f"[re {self.name_of(quote['sender_id'])}: {snippet}] "

    def found(self, result: SearchResult, channels: list[Channel], *, with_id: bool = False) -> str:
        """`[#team 12:03] bob: …the snippet with each [match]…`: where (the channel's title as
        the list names it), when (local time), who, and the snippet (not the whole text);
        headed by the message's id if asked."""
        message, channel = result["message"], result["channel"]
        listed = [c for c in channels if c["channel_id"] == channel["channel_id"]]
        if listed:
            where = self.title(listed[0])
        else:
            where = visible(f"#{channel['name']}") if channel["name"] is not None else "direct"
        head = f"{visible(message['message_id'])} " if with_id else ""
        sent = _time(message["sent_at"])
        who = self.name_of(message["sender_id"])
        return visible(f"{head}[{where} {sent:%H:%M}] {who}: {marked(result['snippet'])}")
