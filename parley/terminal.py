"""`parley chat`: the interactive terminal client. One line of input at the bottom (prompt_toolkit,
with `patch_stdout` so that what arrives is printed above the line being typed, never through
it), the channel list, one open chat with its history, live messages and the presence of its
people, and commands that start with `/`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httpx
from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from parley.credentials import Credentials
from parley.directory import Directory, NotFound
from parley.reconnecting import Handlers, LoggedOut, ReconnectingSession
from parley_client import ApiError, Channel, Client, Frame, Message

PAGE = 20
"""Messages shown when a chat opens, and per `/more`."""
UNREAD_MAX = 100
"""`GET /v1/channels` counts unread messages exactly up to this, and says this beyond."""

HELP = """\
Type a line to send it to the open chat (start it with // to send a line that starts with /).
  /channels                  back to your channels (then type a number or a name to open one)
  /open NUMBER|NAME          open a chat: its number in the list, a group's name or a username
  /more                      show older messages of the open chat
  /dm USERNAME               a direct chat with this user
  /group NAME USERNAME...    a new group with these users
  /help                      this text
  /quit                      leave (Ctrl-D too)"""


def say(text: str) -> None:
    """Print above the input line (patch_stdout moves the line down)."""
    print(text, flush=True)


@dataclass(slots=True)
class OpenChat:
    """The chat on screen. Until its first page of history is shown, its live messages wait in
    `held`, so that the page and the live stream join with no gap and no repeat."""

    channel: Channel
    loaded: bool = False
    held: list[Message] = field(default_factory=list)
    newest: int = 0
    """The newest message_id shown: anything not above it was shown already."""
    oldest: str | None = None
    """The oldest message_id shown: where `/more` pages back from."""

    @property
    def channel_id(self) -> str:
        return self.channel["channel_id"]


class Chat:
    def __init__(
        self, client: Client, me: Credentials, directory: Directory, channels: list[Channel]
    ) -> None:
        self.client = client
        self.me = me
        self.directory = directory
        self.channels = channels
        self.open: OpenChat | None = None
        heads = {c["channel_id"]: c["last_message_id"] for c in channels}
        self.link = ReconnectingSession(
            client, me, heads, Handlers(frame=self.on_frame, status=self.on_status)
        )
        self.prompt: PromptSession[str] = PromptSession(erase_when_done=True)
        self.commands: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "channels": self.cmd_channels,
            "open": self.cmd_open,
            "more": self.cmd_more,
            "dm": self.cmd_dm,
            "group": self.cmd_group,
            "help": self.cmd_help,
        }

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Until /quit, Ctrl-D or Ctrl-C; raises LoggedOut if the device is logged out."""
        link = asyncio.create_task(self.link.run())
        try:
            with patch_stdout():
                self.show_channels()
                while (line := await self.next_line(link)) is not None:
                    if line.strip() == "/quit":
                        return
                    await self.handle(line)
        finally:
            link.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link
            await self.link.close()

    async def next_line(self, link: asyncio.Task[None]) -> str | None:
        """The next line typed (None at Ctrl-D or Ctrl-C), unless the connection ends first."""
        reading = asyncio.ensure_future(self.prompt.prompt_async(self.prompt_text))
        await asyncio.wait({reading, link}, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, EOFError, KeyboardInterrupt):
                await reading
            link.result()  # raises what ended it (LoggedOut)
            return None
        try:
            return reading.result()
        except (EOFError, KeyboardInterrupt):
            return None

    def prompt_text(self) -> str:
        return f"{self.directory.title(self.open.channel)}> " if self.open else "parley> "

    async def handle(self, line: str) -> None:
        try:
            if line.startswith("//"):
                await self.send(line[1:])
            elif line.startswith("/"):
                name, *args = line[1:].split()
                command = self.commands.get(name)
                if command is None:
                    say(f"! no command /{name}: /help lists them")
                else:
                    await command(args)
            elif not line.strip():
                return
            elif self.open is not None:
                await self.send(line)
            else:
                await self.cmd_open([line.strip()])
        except NotFound as exc:
            say(f"! {exc}")
        except ApiError as exc:
            say(f"! {exc.code or exc.status}: {exc.message}")
        except httpx.TransportError as exc:
            say(f"! cannot reach {self.client.base_url}: {exc or type(exc).__name__}")

    async def send(self, text: str) -> None:
        if self.open is None:
            say("! no chat is open: type a number or a name from the list first")
            return
        await self.link.send(self.open.channel_id, text)  # shown when its echo comes back

    # --- commands ---------------------------------------------------------------------------

    async def cmd_help(self, args: list[str]) -> None:
        say(HELP)

    async def cmd_channels(self, args: list[str]) -> None:
        self.open = None
        await self.link.watch([])
        await self.reload()
        self.show_channels()

    async def cmd_open(self, args: list[str]) -> None:
        if len(args) != 1:
            say("! /open takes one number or name")
            return
        key = args[0]
        if key.isdigit() and 1 <= int(key) <= len(self.channels):
            channel = self.channels[int(key) - 1]
        else:
            channel = await self.directory.find_channel(self.client, self.me, self.channels, key)
        await self.open_chat(channel)

    async def cmd_more(self, args: list[str]) -> None:
        chat = self.open
        if chat is None or chat.oldest is None:
            say("! no older messages to show" if chat else "! no chat is open")
            return
        page = await self.client.history(self.me, chat.channel_id, before=chat.oldest, limit=PAGE)
        if not page:
            say("-- no older messages --")
            return
        say(f"-- {len(page)} older message{'s' if len(page) > 1 else ''} --")
        for message in page:
            say(self.directory.line(message))
        say("-- end of older messages --")
        chat.oldest = page[0]["message_id"]

    async def cmd_dm(self, args: list[str]) -> None:
        if len(args) != 1:
            say("! /dm takes one username")
            return
        await self.directory.refresh(self.client, self.me)
        user_id = await self.directory.user_named(self.client, self.me, args[0])
        await self.open_created(await self.client.open_direct(self.me, user_id))

    async def cmd_group(self, args: list[str]) -> None:
        if len(args) < 2:
            say("! /group takes a name and at least one username")
            return
        name, *people = args
        await self.directory.refresh(self.client, self.me)
        member_ids = [
            await self.directory.user_named(self.client, self.me, person) for person in people
        ]
        await self.open_created(await self.client.create_group(self.me, name, member_ids))

    # --- channels and the open chat ---------------------------------------------------------

    async def reload(self) -> None:
        self.channels = await self.client.channels(self.me)
        for channel in self.channels:
            self.link.add_channel(channel["channel_id"], channel["last_message_id"])

    def show_channels(self) -> None:
        if not self.channels:
            say("No channels yet: /dm USERNAME or /group NAME USERNAME... starts one.")
            return
        say("Your channels:")
        for number, channel in enumerate(self.channels, 1):
            kind = "direct" if channel["type"] == "direct" else f"{len(channel['members'])} members"
            unread = channel.get("unread_count", 0)  # counted by the server up to 100
            count = f"  {'100+' if unread >= UNREAD_MAX else unread} unread" if unread else ""
            say(f"  {number}. {self.directory.title(channel)} ({kind}){count}")
        say("Type a number or a name to open a chat; /help for commands.")

    async def open_created(self, created: Channel) -> None:
        """A channel just made (or found again) by /dm or /group, as the list now has it."""
        await self.reload()
        listed = [c for c in self.channels if c["channel_id"] == created["channel_id"]]
        await self.open_chat(listed[0] if listed else created)

    async def open_chat(self, channel: Channel) -> None:
        chat = self.open = OpenChat(channel)
        self.link.add_channel(channel["channel_id"], channel["last_message_id"])
        people = [self.directory.name_of(m) for m in self.directory.others(channel)]
        say(f"== {self.directory.title(channel)} == with {', '.join(people) or 'nobody else'}")
        page = await self.client.history(self.me, chat.channel_id, limit=PAGE)
        if page:
            chat.oldest = page[0]["message_id"]
        if len(page) == PAGE:
            say("(/more shows older messages)")
        chat.loaded = True
        await self.show(chat, [*page, *chat.held])
        chat.held.clear()
        await self.watch_presence(channel)

    async def watch_presence(self, channel: Channel) -> None:
        others = self.directory.others(channel)
        friends = [m for m in others if m in self.directory.friends]
        strangers = [self.directory.name_of(m) for m in others if m not in friends]
        if strangers:
            say(f"(presence is shared by friends only: not shown for {', '.join(strangers)})")
        await self.link.watch(friends)

    async def show(self, chat: OpenChat, messages: list[Message]) -> None:
        """Print the messages not shown yet, in order; then the device has had them (`ack`: its
        next sync starts after them) and the user has read them (`read`: their read marker, on
        every device, and the unread counts)."""
        fresh = [m for m in messages if int(m["message_id"]) > chat.newest]
        for message in fresh:
            say(self.directory.line(message))
            chat.newest = int(message["message_id"])
        if fresh:
            newest = fresh[-1]["message_id"]
            await self.link.ack(chat.channel_id, newest)
            await self.link.read(chat.channel_id, newest)

    # --- what the connection brings ---------------------------------------------------------

    async def on_frame(self, frame: Frame) -> None:
        kind = frame["type"]
        if kind == "message":
            await self.on_message(cast(Message, frame))
        elif kind == "presence":
            if self.open and frame["user_id"] in self.directory.others(self.open.channel):
                say(f"* {self.directory.name_of(frame['user_id'])} is {frame['status']}")
        elif kind == "error":
            what = "not sent" if frame.get("ref") else "refused"
            say(f"! {what}: {frame['code']}: {frame['message']}")

    async def on_message(self, message: Message) -> None:
        chat = self.open
        if chat is not None and message["channel_id"] == chat.channel_id:
            if chat.loaded:
                await self.show(chat, [message])
            else:
                chat.held.append(message)
            return
        if message["sender_id"] == self.me.user_id:
            return  # sent from another device: nothing new to the user
        listed = [c for c in self.channels if c["channel_id"] == message["channel_id"]]
        where = self.directory.title(listed[0]) if listed else "a new chat (see /channels)"
        sender = self.directory.name_of(message["sender_id"])
        say(f"(new in {where}) {sender}: {message['text'][:60]}")

    def on_status(self, text: str) -> None:
        say(f"* {text}")


async def chat(me: Credentials) -> None:
    """Run the interactive client as the stored device `me`; raises LoggedOut when its token
    no longer works."""
    async with Client(me.url) as client:
        try:
            channels = await client.channels(me)
        except ApiError as exc:
            if exc.status == 401:
                raise LoggedOut("the stored login no longer works") from None
            raise
        directory = await Directory.load(client, me, me.user_id, me.username)
        await Chat(client, me, directory, channels).run()
