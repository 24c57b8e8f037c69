"""`parley chat`: the interactive terminal client. One line of input at the bottom (prompt_toolkit,
with `patch_stdout` so that what arrives is printed above the line being typed, never through
it), the channel list, one open chat with its history, live messages and the presence of its
people, who is typing (a line of the prompt, over the input line), changes to its messages and read
receipts, search over all the user's chats, and commands that start with `/`.

Everything goes to the screen through `say` and `prompt_text`, which render it with
`terminal.rendering.visible`: no control character a user or the server sent reaches the
terminal. Fields that must stay on one line (names, titles, emoji, error messages, previews) are
rendered one-line where the line is made, so that a line feed in them cannot start a line that
seems to come from someone else."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httpx
from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout

from parley_client import (
    ApiError,
    ChangeFrame,
    Channel,
    Client,
    Frame,
    Message,
    Receipt,
    ReportReason,
)
from parley_client.reconnecting import (
    ROWS,
    SUSPENDED,
    Handlers,
    LoggedOut,
    ReconnectingSession,
)
from terminal.credentials import Credentials
from terminal.directory import Directory, NotFound
from terminal.oneshot import CommandError, invite_code
from terminal.rendering import one_line, rendered_errors, visible
from terminal.timeline import Timeline, Typists

PAGE = 20
"""Messages shown when a chat opens, and per `/more`."""
UNREAD_MAX = 100
"""`GET /v1/channels` counts unread messages exactly up to this, and says this beyond."""
TYPING_EVERY_S = 2.5
"""How often `typing` goes out while the user types (the protocol asks every 2-3 s)."""

HELP = """\
Type a line to send it to the open chat (start it with // to send a line that starts with /).
  /channels                  back to your channels (then type a number or a name to open one)
  /open NUMBER|NAME          open a chat: its number in the list, a group's name or a username
  /more                      show older messages of the open chat
  /edit N TEXT               replace the text of your message #N
  /delete N                  delete message #N (yours, or any as a group's owner or admin)
  /react N EMOJI             react to message #N (/unreact N EMOJI takes it back)
  /report N REASON [NOTE]    report message #N to the group's admins and the operator
                             (REASON: spam, harassment, hate, violence, illegal or other)
  /reply N TEXT              answer message #N (the reply shows its words)
  /thread N                  the replies to message #N
  /pin N                     pin message #N (/unpin N unpins it)
  /pins                      the chat's pinned messages
  /search WORDS...           your messages with all these words, in every chat, newest first
  /search more               the next, older results
  /dm USERNAME               a direct chat with this user
  /group NAME USERNAME...    a new group with these users
  /invite [USES]             an invite link to the open group (owners and admins)
  /join CODE                 join a group with an invite code (or link), and open it
  /help                      this text
  /quit                      leave (Ctrl-D too)"""

REPORT_REASONS: tuple[ReportReason, ...] = (
    "spam",
    "harassment",
    "hate",
    "violence",
    "illegal",
    "other",
)


def say(text: str) -> None:
    """Print above the input line (patch_stdout moves the line down), every control character
    in it made visible (line feeds excepted: one-line fields are rendered where they are put
    in the line)."""
    print(visible(text, multiline=True), flush=True)


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
    read: int = 0
    """The user's read marker here, as far as this device knows (any device moves it)."""
    timeline: Timeline = field(default_factory=Timeline)
    typists: Typists = field(default_factory=Typists)
    seen: dict[str, str] = field(default_factory=dict)
    """user_id -> the receipt line last printed for them (each is printed when it changes)."""

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
        self.prompt.default_buffer.on_text_changed += self.on_typed
        self.typed_at = 0.0
        """When `typing` last went out (monotonic)."""
        self.changes: dict[str, str] = {}
        """client_msg_id -> the command of an edit, delete or reaction not yet answered."""
        self.background: set[asyncio.Task[None]] = set()
        self.searched: tuple[str, str | None] | None = None
        """The last /search's words and where its next page starts (None: no more)."""
        self.commands: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "channels": self.cmd_channels,
            "open": self.cmd_open,
            "more": self.cmd_more,
            "edit": self.cmd_edit,
            "delete": self.cmd_delete,
            "react": self.cmd_react,
            "unreact": self.cmd_unreact,
            "report": self.cmd_report,
            "reply": self.cmd_reply,
            "thread": self.cmd_thread,
            "pin": self.cmd_pin,
            "unpin": self.cmd_unpin,
            "pins": self.cmd_pins,
            "search": self.cmd_search,
            "dm": self.cmd_dm,
            "group": self.cmd_group,
            "invite": self.cmd_invite,
            "join": self.cmd_join,
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
        """`bob> `; over it, while someone types, `bob is typing…` (a line of the prompt, so
        never printed through what the user types; a bottom toolbar would need the terminal
        to report its cursor position, which not all do)."""
        if self.open is None:
            return "parley> "
        here = f"{self.directory.title(self.open.channel)}> "
        typing = self.open.typists.now_typing()
        if not typing:
            return visible(here)
        names = ", ".join(self.directory.name_of(u) for u in typing)
        return visible(f"{names} {'is' if len(typing) == 1 else 'are'} typing…\n{here}", True)

    def redraw(self) -> None:
        """Draw the prompt again (who is typing changes with no key pressed)."""
        self.prompt.app.invalidate()

    def on_typed(self, buffer: Buffer) -> None:
        """A key changed the line: `typing` for the open chat, at most every TYPING_EVERY_S,
        and not for commands."""
        chat, text = self.open, buffer.text
        if chat is None or not text or (text.startswith("/") and not text.startswith("//")):
            return
        now = time.monotonic()
        if now - self.typed_at < TYPING_EVERY_S:
            return
        self.typed_at = now
        self.in_background(self.link.typing(chat.channel_id))

    def in_background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.ensure_future(run())
        self.background.add(task)  # held, so that it is not collected before it ends
        task.add_done_callback(self.background.discard)

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
            say(f"! {visible(exc.code or str(exc.status))}: {visible(exc.message)}")
        except httpx.TransportError as exc:
            say(visible(f"! cannot reach {self.client.base_url}: {exc or type(exc).__name__}"))

    async def send(self, text: str) -> None:
        if self.open is None:
            say("! no chat is open: type a number or a name from the list first")
            return
        await self.link.send(self.open.channel_id, text)  # shown when its echo comes back
        self.typed_at = 0.0  # typing again after a send is news again

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
            say(self.directory.line(message, number=chat.timeline.add(message)))
        say("-- end of older messages --")
        chat.oldest = page[0]["message_id"]

    async def cmd_edit(self, args: list[str]) -> None:
        if len(args) < 2:
            say("! /edit takes a message's number and the new text")
            return
        if found := self.shown_message("/edit", args[0]):
            chat, message_id = found
            text = " ".join(args[1:])
            sent = await self.link.edit(chat.channel_id, message_id, text)
            self.changes[sent] = f"/edit #{args[0].lstrip('#')}"

    async def cmd_delete(self, args: list[str]) -> None:
        if len(args) != 1:
            say("! /delete takes a message's number")
            return
        if found := self.shown_message("/delete", args[0]):
            chat, message_id = found
            sent = await self.link.delete(chat.channel_id, message_id)
            self.changes[sent] = f"/delete #{args[0].lstrip('#')}"

    async def cmd_reply(self, args: list[str]) -> None:
        if len(args) < 2:
            say("! /reply takes a message's number and the text")
            return
        if found := self.shown_message("/reply", args[0]):
            chat, message_id = found
            sent = await self.link.send(chat.channel_id, " ".join(args[1:]), message_id)
            self.changes[sent] = f"/reply #{args[0].lstrip('#')}"

    async def cmd_thread(self, args: list[str]) -> None:
        if len(args) != 1:
            say("! /thread takes a message's number")
            return
        if found := self.shown_message("/thread", args[0]):
            chat, message_id = found
            page = await self.client.history(
                self.me, chat.channel_id, thread=message_id, limit=PAGE
            )
            await self.directory.learn(self.client, self.me, (m["sender_id"] for m in page))
            replies = f"{len(page) or 'no'} repl{'y' if len(page) == 1 else 'ies'}"
            say(f"-- {replies} to #{args[0].lstrip('#')} --")
            for message in page:
                say(self.directory.line(message))
            say("-- end of thread --")

    async def cmd_pin(self, args: list[str]) -> None:
        await self.pinning("/pin", args, unpin=False)

    async def cmd_unpin(self, args: list[str]) -> None:
        await self.pinning("/unpin", args, unpin=True)

    async def pinning(self, command: str, args: list[str], *, unpin: bool) -> None:
        if len(args) != 1:
            say(f"! {command} takes a message's number")
            return
        if found := self.shown_message(command, args[0]):
            chat, message_id = found
            sent = await self.link.pin(chat.channel_id, message_id, unpin)
            self.changes[sent] = f"{command} #{args[0].lstrip('#')}"

    async def cmd_pins(self, args: list[str]) -> None:
        chat = self.open
        if chat is None:
            say("! /pins: no chat is open")
            return
        pinned = await self.client.pins(self.me, chat.channel_id)
        await self.directory.learn(self.client, self.me, (m["sender_id"] for m in pinned))
        say(f"-- {len(pinned) or 'no'} pinned message{'' if len(pinned) == 1 else 's'} --")
        for message in pinned:
            say(self.directory.line(message, number=chat.timeline.number_of(message["message_id"])))
        say("-- end of pins --")

    async def cmd_react(self, args: list[str]) -> None:
        await self.reaction("/react", args, removed=False)

    async def cmd_unreact(self, args: list[str]) -> None:
        await self.reaction("/unreact", args, removed=True)

    async def reaction(self, command: str, args: list[str], *, removed: bool) -> None:
        if len(args) != 2:
            say(f"! {command} takes a message's number and one emoji")
            return
        if found := self.shown_message(command, args[0]):
            chat, message_id = found
            sent = await self.link.react(chat.channel_id, message_id, args[1], removed)
            self.changes[sent] = f"{command} #{args[0].lstrip('#')}"

    async def cmd_report(self, args: list[str]) -> None:
        if len(args) < 2 or args[1] not in REPORT_REASONS:
            say(f"! /report takes a message's number, a reason ({', '.join(REPORT_REASONS)})")
            say("  and, if you like, a note")
            return
        if found := self.shown_message("/report", args[0]):
            chat, message_id = found
            note = " ".join(args[2:]) or None
            reason = args[1]
            await self.client.report(self.me, chat.channel_id, message_id, reason, note)
            say(f"⚑ reported #{args[0].lstrip('#')} as {reason}")

    def shown_message(self, command: str, number: str) -> tuple[OpenChat, str] | None:
        """The open chat and the id of its message `#number`; says why not if there is none."""
        if self.open is None:
            say(f"! {command}: no chat is open")
            return None
        message_id = self.open.timeline.message_id(number)
        if message_id is None:
            say(f"! {command}: no message #{number.lstrip('#')} on screen")
            return None
        return self.open, message_id

    async def cmd_search(self, args: list[str]) -> None:
        """`/search WORDS...` from the newest, `/search more` for the page after the last one
        shown (to look for the word "more" itself: `/search "more"`; punctuation is not
        searched)."""
        if not args:
            say("! /search takes the words to look for (then /search more for older results)")
            return
        if args == ["more"]:
            if self.searched is None or self.searched[1] is None:
                say(
                    "! /search more: no more results" if self.searched else "! nothing searched yet"
                )
                return
            q, before = self.searched
        else:
            q, before = " ".join(args), None
        found = await self.client.search(self.me, q, before=before, limit=PAGE)
        self.searched = (q, found["next_before"])
        if not found["results"]:
            say(f"🔎 no messages with {q!r}")
            return
        known = {c["channel_id"] for c in self.channels}
        if any(r["channel"]["channel_id"] not in known for r in found["results"]):
            await self.reload()  # a chat started by someone else since the list was read
        for result in found["results"]:
            say(f"🔎 {self.directory.found(result, self.channels)}")
        more = found["next_before"] is not None
        say("(/search more shows older results)" if more else "-- end of results --")

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

    async def cmd_invite(self, args: list[str]) -> None:
        if self.open is None or self.open.channel["type"] != "group":
            say("! /invite: open a group first")
            return
        if len(args) > 1 or (args and not (args[0].isdigit() and 1 <= int(args[0]) <= 1000)):
            say("! /invite takes at most one number: how many may join with it (1-1000)")
            return
        uses = int(args[0]) if args else None
        made = await self.client.create_invite(self.me, self.open.channel_id, max_uses=uses)
        say(f"invite code (shown this once): {made['code']}")
        say(f"  others join with /join {made['code']}, or parley join {made['code']}")

    async def cmd_join(self, args: list[str]) -> None:
        if len(args) != 1:
            say("! /join takes an invite code")
            return
        try:
            code = invite_code(args[0])
        except CommandError as exc:
            say(f"! /join: {exc}")
            return
        await self.open_created(await self.client.join_by_invite(self.me, code))

    # --- channels and the open chat ---------------------------------------------------------

    async def reload(self) -> None:
        self.channels = await self.client.channels(self.me)
        members = (m for channel in self.channels for m in channel["members"])
        await self.directory.learn(self.client, self.me, members)
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
            mentions = channel.get("mention_count", 0)
            if mentions:
                count += f", {'100+' if mentions >= UNREAD_MAX else mentions} mentioning you"
            settings = channel.get("notifications")
            if settings is not None and settings["level"] != "all":
                count += f"  (notifies: {settings['level']})"
            say(f"  {number}. {self.directory.title(channel)} ({kind}){count}")
        say("Type a number or a name to open a chat; /help for commands.")

    async def open_created(self, created: Channel) -> None:
        """A channel just made (or found again) by /dm or /group, as the list now has it."""
        await self.reload()
        listed = [c for c in self.channels if c["channel_id"] == created["channel_id"]]
        await self.open_chat(listed[0] if listed else created)

    async def open_chat(self, channel: Channel) -> None:
        chat = self.open = OpenChat(channel, read=int(channel.get("read_message_id") or 0))
        self.link.add_channel(channel["channel_id"], channel["last_message_id"])
        people = [self.directory.name_of(m) for m in self.directory.others(channel)]
        say(f"== {self.directory.title(channel)} == with {', '.join(people) or 'nobody else'}")
        page = await self.client.history(self.me, chat.channel_id, limit=PAGE)
        if page:
            chat.oldest = page[0]["message_id"]
        if len(page) == PAGE:
            say("(/more shows older messages)")
        chat.loaded = True
        held, chat.held = chat.held, []
        await self.show(chat, page)
        for row in held:  # in the channel's order, after the page
            await self.on_row(chat, row)
        self.show_receipts(chat, await self.client.receipts(self.me, chat.channel_id))
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
        await self.directory.learn(self.client, self.me, (m["sender_id"] for m in fresh))
        for message in fresh:
            say(self.directory.line(message, number=chat.timeline.add(message)))
            chat.newest = int(message["message_id"])
            if chat.typists.stopped(message["sender_id"]):
                self.redraw()
        if fresh:
            await self.seen_up_to(chat, fresh[-1]["message_id"])

    async def seen_up_to(self, chat: OpenChat, row_id: str) -> None:
        """The device has had the chat up to this row (`ack`) and the user has read it
        (`read`, unless another device of theirs has read that far already)."""
        await self.link.ack(chat.channel_id, row_id)
        if int(row_id) > chat.read:
            chat.read = int(row_id)
            await self.link.read(chat.channel_id, row_id)

    def show_receipts(self, chat: OpenChat, receipts: list[Receipt]) -> None:
        """`✓ seen by bob` for each other member who has read all the chat shows (`✓ seen by
        bob up to #3` for one behind), each when it changes."""
        for receipt in receipts:
            user_id = receipt["user_id"]
            if user_id == self.me.user_id:
                continue
            name = self.directory.name_of(user_id)
            if int(receipt["message_id"]) >= chat.newest:
                line = f"✓ seen by {name}"
            elif (number := chat.timeline.newest_at_or_before(receipt["message_id"])) is not None:
                line = f"✓ seen by {name} up to #{number}"
            else:
                continue
            if chat.seen.get(user_id) != line:
                chat.seen[user_id] = line
                say(line)

    # --- what the connection brings ---------------------------------------------------------

    async def on_frame(self, frame: Frame) -> None:
        kind, chat = frame["type"], self.open
        in_chat = chat is not None and frame.get("channel_id") == chat.channel_id
        if kind == "message":
            await self.on_message(cast(Message, frame))
        elif kind in ROWS and chat is not None and in_chat:
            if chat.loaded:
                await self.on_row(chat, cast(Message, frame))
            else:
                chat.held.append(cast(Message, frame))
        elif kind == "typing" and chat is not None and in_chat:
            chat.typists.typing(frame["user_id"], int(frame["expires_in_ms"]))
            self.redraw()
            expiry = asyncio.get_running_loop().call_later
            expiry(int(frame["expires_in_ms"]) / 1000 + 0.05, self.redraw)
        elif kind == "read" and chat is not None and in_chat:
            chat.read = max(chat.read, int(frame["message_id"]))  # read on another device
        elif kind == "receipts" and chat is not None and in_chat:
            self.show_receipts(chat, cast(list[Receipt], frame["reads"]))
        elif kind == "accepted":
            self.changes.pop(frame["client_msg_id"], None)  # its row shows it done
        elif kind == "error" and frame.get("ref") in self.changes:
            command = self.changes.pop(frame["ref"])
            say(f"! {visible(command)}: {visible(frame['code'])}: {visible(frame['message'])}")
        elif kind == "presence":
            if self.open and frame["user_id"] in self.directory.others(self.open.channel):
                name = self.directory.name_of(frame["user_id"])
                say(f"* {name} is {visible(frame['status'])}")
        elif kind == "error":
            what = "not sent" if frame.get("ref") else "refused"
            say(f"! {what}: {visible(frame['code'])}: {visible(frame['message'])}")

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
        news = "mentioned in" if self.directory.mentions_me(message) else "new in"
        say(f"({news} {where}) {sender}: {one_line(message['text'][:60])}")

    async def on_row(self, chat: OpenChat, row: Message) -> None:
        """A message or a change of the open chat, past its first page, in the channel's order."""
        if cast(Frame, row).get("type", "message") == "message":
            await self.show(chat, [row])
            return
        if int(row["message_id"]) <= chat.newest:
            return  # in the page already
        change = cast(ChangeFrame, row)
        chat.timeline.apply(change)
        say(chat.timeline.describe(change, self.directory.name_of(change["sender_id"])))
        chat.newest = int(change["message_id"])
        await self.seen_up_to(chat, change["message_id"])

    def on_status(self, text: str) -> None:
        say(f"* {visible(text)}")


async def chat(me: Credentials) -> None:
    """Run the interactive client as the stored device `me`; raises LoggedOut when its token
    no longer works."""
    with rendered_errors():
        async with Client(me.url) as client:
            try:
                channels = await client.channels(me)
            except ApiError as exc:
                if exc.status == 401:
                    raise LoggedOut("the stored login no longer works") from None
                if exc.code == "suspended":
                    raise LoggedOut(SUSPENDED) from None
                raise
            directory = await Directory.load(client, me, me.user_id, me.username)
            await directory.learn(client, me, (m for c in channels for m in c["members"]))
            await Chat(client, me, directory, channels).run()
