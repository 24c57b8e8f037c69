"""The terminal client against the real stack: `parley login`, `send` and `history` as a script
runs them (subprocesses: exact output and exit codes), `parley chat` as a person uses it (in a
pseudo-terminal, typing while messages arrive; edits, deletes, reactions, typing and receipts
both ways; search), `parley search`, and its connection resuming after a drop with no gap and no
duplicate."""

from __future__ import annotations

import asyncio
import re
import stat
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import pexpect

from parley_client import Client, Frame, Login, Message, Operator
from parley_client.reconnecting import Handlers, ReconnectingSession
from terminal.timeline import Typists
from tests.conftest import MARK, PASSWORD, Api, eventually, extra_gateway
from tests.stack import Stack

TIMEOUT_S = 30


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def parley(env: dict[str, str], *args: str, stdin: str | None = None) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley.cli",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else b""), TIMEOUT_S * 2
    )
    return Ran(await process.wait(), out.decode(), err.decode())


def shown(message: Message, name: str) -> str:
    """How `parley history` and `parley chat` show a message, in UTC."""
    sent = datetime.fromisoformat(message["sent_at"].replace("Z", "+00:00"))
    return f"[{sent:%H:%M}] {name}: {message['text']}"


def hit(message: Message, where: str, name: str, snippet: str) -> str:
    """How `parley chat`'s /search and `parley search` show a result, in UTC."""
    sent = datetime.fromisoformat(message["sent_at"].replace("Z", "+00:00"))
    return f"[{where} {sent:%H:%M}] {name}: {snippet}"


async def friends_with_a_chat(api: Api) -> tuple[Login, Login, str]:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    await api.make_friends(alice, bob)
    return alice, bob, await api.direct(alice, bob.user_id)


async def test_send_prints_the_message_id_and_history_prints_the_page_back(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    logged_in = await parley(env, "login", "--username", alice.username)
    assert (logged_in.code, logged_in.out) == (
        0,
        f"logged in as {alice.username} on {api.base_url}\n",
    )
    stored = tmp_path / "config" / "session.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600

    # By the friend's name, then by the channel's id with the text on stdin.
    first = await parley(env, "send", "--channel", bob.username, "hello from a script")
    second = await parley(env, "send", "--channel", channel, stdin="piped\nin two lines\n")
    assert (first.code, first.err, second.code, second.err) == (0, "", 0, "")
    # Someone who is not a friend: found by username.
    carol = await api.new_device("carol")
    with_carol = await api.direct(carol, alice.user_id)
    to_carol = await parley(env, "send", "--channel", carol.username, "hi carol")
    [got] = await api.history(carol, with_carol)
    assert (to_carol.out, got["text"]) == (got["message_id"] + "\n", "hi carol")
    messages = await api.history(bob, channel)
    assert [(m["message_id"] + "\n", m["text"]) for m in messages] == [
        (first.out, "hello from a script"),
        (second.out, "piped\nin two lines"),
    ]

    plain = await parley(env, "history", "--channel", channel)
    a = alice.username
    assert (plain.code, plain.err) == (0, "")
    assert plain.out == (
        f"{messages[0]['message_id']} {shown(messages[0], a)}\n"
        f"{messages[1]['message_id']} {shown(messages[1], a).replace(chr(10), chr(10) + '    ')}\n"
    )
    as_json = await parley(env, "history", "--channel", channel, "--json")
    assert [orjson.loads(line) for line in as_json.out.splitlines()] == messages
    older = await parley(
        env, "history", "-c", channel, "--before", messages[1]["message_id"], "--limit", "1"
    )
    assert older.out == f"{messages[0]['message_id']} {shown(messages[0], a)}\n"

    # A bare token instead of the stored login: Bob's, who knows Alice as a friend.
    as_bob = await parley(
        {**env, "PARLEY_CONFIG_DIR": str(tmp_path / "none")},
        "history",
        "-c",
        channel,
        "--limit",
        "1",
        "--token",
        bob.token,
    )
    assert (as_bob.code, as_bob.out) == (
        0,
        f"{messages[1]['message_id']} {shown(messages[1], a).replace(chr(10), chr(10) + '    ')}\n",
    )

    token = orjson.loads(stored.read_bytes())["token"]
    assert await parley(env, "logout") == Ran(0, f"logged out {a} from {api.base_url}\n", "")
    assert not stored.exists()
    revoked = Login(alice.user_id, "", token, a)
    assert (await api.request("GET", "/v1/channels", auth=revoked)).status_code == 401


async def test_history_names_group_members_who_are_no_friends(
    api: Api, env: dict[str, str]
) -> None:
    alice, carol = await api.new_device("alice"), await api.new_device("carol")
    group = await api.group(alice, [carol.user_id], name="team")
    socket = await api.connect(carol)
    await socket.accepted(await socket.send_message(group, "hello team"))
    [message] = await socket.collect_messages(group, 1)
    assert (await parley(env, "login", "--username", alice.username)).code == 0
    plain = await parley(env, "history", "--channel", group)
    assert plain == Ran(0, f"{message['message_id']} {shown(message, carol.username)}\n", "")


async def test_a_refused_command_exits_non_zero_with_the_reason(
    api: Api, env: dict[str, str]
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    carol = await api.new_device("carol")
    elsewhere = await api.direct(carol, bob.user_id)

    nobody = await parley(env, "history", "--channel", channel)
    assert nobody == Ran(
        1, "", "parley history: not logged in: run `parley login` or `parley chat`\n"
    )
    wrong = {**env, "PARLEY_PASSWORD": "not the password"}
    refused = await parley(wrong, "login", "--username", alice.username)
    assert refused == Ran(1, "", "parley login: bad_credentials: wrong username or password\n")
    assert (await parley(env, "login", "--username", alice.username)).code == 0

    not_member = await parley(env, "send", "--channel", elsewhere, "let me in")
    assert not_member == Ran(
        1, "", "parley send: not sent: not_member: you are not a member of this channel\n"
    )
    too_large = await parley(env, "send", "--channel", channel, stdin="x" * 100_001)
    assert too_large == Ran(
        1, "", "parley send: not sent: too_large: text is limited to 100000 characters\n"
    )
    unknown = await parley(env, "send", "--channel", "nosuchgroup", "hi")
    assert unknown == Ran(
        1,
        "",
        "parley send: no channel 'nosuchgroup': use its id, a group's name or a username\n",
    )
    history = await parley(env, "history", "--channel", elsewhere)
    assert history == Ran(
        1, "", "parley history: not_member: you are not a member of this channel\n"
    )
    assert await api.history(bob, channel) == []
    bad_token = await parley(env, "history", "-c", channel, "--token", "not-a-token")
    assert bad_token.code == 1
    assert bad_token.err.startswith("parley history: unauthorized: ")
    assert bad_token.err.endswith(" (log in again: `parley login`)\n")


def spawn_chat(env: dict[str, str], tmp_path: Path, *args: str) -> pexpect.spawn:
    """`parley chat` in a pseudo-terminal of 50 x 200 (wide enough that no line wraps)."""
    terminal = pexpect.spawn(
        sys.executable,
        ["-m", "parley.cli", "chat", *args],
        env={**env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"},
        encoding="utf-8",
        timeout=TIMEOUT_S,
        dimensions=(50, 200),
    )
    terminal.logfile_read = (tmp_path / "terminal.log").open("w")  # the screen, for a failure
    return terminal


async def test_chat_in_a_terminal_pages_sends_and_shows_live_messages_while_typing(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    carol = await api.new_device("carol", group_adds=None)  # not a friend of Alice's
    listener = await api.connect(bob)
    phone = await api.connect(await api.add_device(alice.username))  # Alice's other device
    # Often enough that the stack's short presence timeout never shows Bob offline.
    async with listener.heartbeating(0.5):
        for i in range(21):
            await listener.accepted(await listener.send_message(channel, f"earlier {i}"))
        terminal = spawn_chat({**env, "PARLEY_PASSWORD": ""}, tmp_path)

        async def expect(text: str) -> None:
            await asyncio.to_thread(terminal.expect, re.escape(text))

        try:
            await expect("Username:")
            terminal.sendline(alice.username)
            await expect("Password:")
            terminal.sendline(PASSWORD)
            await expect("Your channels:")
            await expect(f"1. {bob.username} (direct)  21 unread")
            terminal.sendline("1")
            await expect(f"== {bob.username} == with {bob.username}")
            await expect("(/more shows older messages)")
            page = await api.history(bob, channel, limit=21)
            for message in page[1:]:
                await expect(shown(message, bob.username))
            await expect(f"* {bob.username} is online")
            # What was shown is read: on every device of Alice's, and in the unread counts.
            newest = page[-1]["message_id"]
            read = await phone.until(lambda f: f["type"] == "read" and f["message_id"] == newest)
            assert read["channel_id"] == channel
            [listed] = await api.channels(alice)
            assert (listed["read_message_id"], listed["unread_count"]) == (newest, 0)
            terminal.sendline("/more")
            await expect("-- 1 older message --")
            await expect(shown(page[0], bob.username))

            terminal.sendline("hello bob")
            frame = await listener.until(
                lambda f: f["type"] == "message" and f["text"] == "hello bob"
            )
            assert frame["sender_id"] == alice.user_id
            await expect(shown(frame, alice.username))  # type: ignore[arg-type]

            # Half a line typed, then a message arrives: it is printed above the line, and the
            # line goes on where it was.
            terminal.send("half typ")
            await expect("half typ")
            await listener.accepted(await listener.send_message(channel, "hi alice, live"))
            live = await listener.until(
                lambda f: f["type"] == "message" and f["text"] == "hi alice, live"
            )
            await expect(shown(live, bob.username))  # type: ignore[arg-type]
            terminal.sendline("ed")
            typed = await listener.until(
                lambda f: f["type"] == "message" and f["sender_id"] == alice.user_id
            )
            assert typed["text"] == "half typed"

            # New chats with users found by their username.
            terminal.sendline("/dm nobody")
            await expect("! no user 'nobody'")
            terminal.sendline(f"/dm {carol.username}")
            await expect(f"== {carol.username} == with {carol.username}")
            await expect(f"(presence is shared by friends only: not shown for {carol.username})")
            # Carol lets only her friends add her to groups (the default): the server's reason.
            terminal.sendline(f"/group team {bob.username} {carol.username}")
            await expect(
                f"! not_allowed: not added, by their choice: user {carol.user_id}:"
                " only their friends may add them to groups"
            )
            await api.allow_group_adds(carol, "everyone")
            terminal.sendline(f"/group team {bob.username} {carol.username}")
            await expect(f"== #team == with {bob.username}, {carol.username}")
            terminal.sendline("/channels")
            await asyncio.to_thread(
                terminal.expect, re.escape(f"1. {bob.username} (direct)") + "\r\n"
            )
            await expect("3. #team (3 members)")

            terminal.sendline("/quit")
            await asyncio.to_thread(terminal.expect, pexpect.EOF)
        finally:
            terminal.close(force=True)
            terminal.logfile_read.close()
        assert terminal.exitstatus == 0, terminal.before


async def test_chat_shows_what_others_change_and_type_and_sends_the_users_changes(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    listener = await api.connect(bob)
    phone = await api.connect(alice)  # Alice's login, not the terminal's device
    async with listener.heartbeating(0.5):
        for text in ("to be edited", "to be deleted"):
            await listener.accepted(await listener.send_message(channel, text))
        await phone.accepted(await phone.send_message(channel, "mine"))
        await listener.until(lambda f: f["type"] == "message" and f["text"] == "mine")
        page = await api.history(alice, channel)  # each delivered once stored
        first, second, mine = (m["message_id"] for m in page)
        terminal = spawn_chat(env, tmp_path, "--username", alice.username)

        async def expect(text: str) -> None:
            await asyncio.to_thread(terminal.expect, re.escape(text))

        async def frame_of(kind: str) -> Frame:
            return await listener.until(
                lambda f: f["type"] == kind and f.get("sender_id", f.get("user_id")) != bob.user_id
            )

        b = bob.username
        try:
            await expect("Your channels:")
            terminal.sendline("1")
            await expect(f"#1 {shown(page[0], b)}")
            await expect(f"#2 {shown(page[1], b)}")
            await expect(f"#3 {shown(page[2], alice.username)}")
            await listener.read(channel, mine)
            await expect(f"✓ seen by {b}")

            # What Bob does shows as it happens.
            await listener.accepted(await listener.edit(channel, first, "edited text"))
            await expect(f"~ {b} edited #1: edited text")
            await listener.accepted(await listener.react(channel, mine, "👍"))
            await expect(f"~ {b} reacted 👍 to #3")
            await listener.accepted(await listener.delete(channel, second))
            await expect(f"~ {b} deleted #2")
            await listener.typing(channel)
            # Over the prompt `bob> `: prompt_toolkit redraws only the cells that change, so
            # the name, where the prompt had it already, is not written again.
            await expect(" is typing…")

            # What Alice does reaches Bob as the protocol's frames.
            terminal.sendline("/edit 3 mine, edited")
            edited = await frame_of("edit")
            assert {k: edited[k] for k in ("channel_id", "target_id", "sender_id", "text")} == {
                "channel_id": channel,
                "target_id": mine,
                "sender_id": alice.user_id,
                "text": "mine, edited",
            }
            await expect(f"~ {alice.username} edited #3: mine, edited")
            terminal.sendline("/react 1 🎉")
            reacted = await frame_of("reaction")
            assert (reacted["target_id"], reacted["emoji"], reacted["removed"]) == (
                first,
                "🎉",
                False,
            )
            terminal.sendline("/unreact #1 🎉")
            taken_back = await frame_of("reaction")
            assert (taken_back["target_id"], taken_back["removed"]) == (first, True)
            await expect(f"~ {alice.username} took back 🎉 from #1")
            terminal.sendline("/edit 1 not mine")
            await expect("! /edit #1: forbidden: only its sender edits a message")
            terminal.sendline("/react 9 👍")
            await expect("! /react: no message #9 on screen")

            # Typing a line tells Bob, at most every couple of seconds.
            terminal.send("typing")
            typing = await frame_of("typing")
            assert (typing["channel_id"], typing["user_id"]) == (channel, alice.user_id)
            terminal.sendline("")
            await listener.until(lambda f: f["type"] == "message" and f["text"] == "typing")

            # History shows each message's latest state.
            terminal.sendline("/open 1")
            await expect(f"#1 {shown(page[0], b).replace('to be edited', 'edited text (edited)')}")
            await expect(f"#2 {shown(page[1], b).replace('to be deleted', '[deleted]')}")
            await expect(f"#3 {shown(page[2], alice.username)}, edited (edited)  [👍 1]")

            terminal.sendline("/quit")
            await asyncio.to_thread(terminal.expect, pexpect.EOF)
        finally:
            terminal.close(force=True)
            terminal.logfile_read.close()
        assert terminal.exitstatus == 0, terminal.before


async def test_chat_shows_replies_with_their_quote_answers_and_threads_them(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    listener = await api.connect(bob)
    async with listener.heartbeating(0.5):
        await listener.accepted(await listener.send_message(channel, "the question"))
        (question,) = await listener.collect_messages(channel, 1)
        asked = question["message_id"]
        terminal = spawn_chat(env, tmp_path, "--username", alice.username)

        async def expect(text: str) -> None:
            await asyncio.to_thread(terminal.expect, re.escape(text))

        b = bob.username
        try:
            await expect("Your channels:")
            terminal.sendline("1")
            await expect(f"#1 {shown(question, b)}")
            # Bob's reply shows with its quote; Alice answers with /reply.
            await listener.accepted(
                await listener.send_message(channel, "bob's answer", reply_to=asked)
            )
            await expect(f"[re {b}: the question] bob's answer")
            terminal.sendline("/reply 1 alice's answer")
            reply = await listener.until(
                lambda f: f["type"] == "message" and f["text"] == "alice's answer"
            )
            assert reply["reply_to"] == asked
            assert reply["quote"] == {"sender_id": bob.user_id, "text": "the question"}
            await expect(f"[re {b}: the question] alice's answer")
            terminal.sendline("/thread 1")
            await expect("-- 2 replies to #1 --")
            await expect(f"{b}: [re {b}: the question] bob's answer")
            await expect(f"{alice.username}: [re {b}: the question] alice's answer")
            await expect("-- end of thread --")

            # Bob deletes his question: the quotes become tombstones; no more replies to it.
            await listener.accepted(await listener.delete(channel, asked))
            await expect(f"~ {b} deleted #1")
            terminal.sendline("/open 1")
            await expect("[deleted]  (2 replies: /thread)")
            await expect("[re a deleted message] bob's answer")
            terminal.sendline("/reply 1 too late")
            await expect("! /reply #1: not_found: reply_to message not found")

            # Either member of a direct chat pins; the pin shows on the message and in /pins.
            terminal.sendline("/pin 2")
            pin = await listener.until(lambda f: f["type"] == "pin")
            answers = [m["message_id"] for m in await api.history(alice, channel, thread=asked)]
            assert (pin["target_id"], pin["sender_id"]) == (answers[0], alice.user_id)
            await expect(f"~ {alice.username} pinned #2")
            terminal.sendline("/pins")
            await expect("-- 1 pinned message --")
            await expect(f"(pinned by {alice.username})")
            await listener.accepted(await listener.pin(channel, pin["target_id"], unpin=True))
            await expect(f"~ {b} unpinned #2")
            terminal.sendline("/pins")
            await expect("-- no pinned messages --")

            terminal.sendline("/quit")
            await asyncio.to_thread(terminal.expect, pexpect.EOF)
        finally:
            terminal.close(force=True)
            terminal.logfile_read.close()
        assert terminal.exitstatus == 0, terminal.before


def test_someone_typing_is_shown_until_it_expires_or_their_message_comes() -> None:
    now = [100.0]
    typists = Typists(clock=lambda: now[0])
    typists.typing("bob", 3000)
    typists.typing("carol", 6000)
    assert typists.now_typing() == ["bob", "carol"]
    now[0] += 3.0
    assert typists.now_typing() == ["carol"]
    assert typists.stopped("carol")
    assert typists.now_typing() == []


async def test_edit_and_delete_commands_print_the_change_id_or_exit_non_zero(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    sender = await api.connect(alice)
    await sender.accepted(await sender.send_message(channel, "typo"))
    await sender.until(lambda f: f["type"] == "message")  # delivered once stored
    [message] = await api.history(alice, channel)
    as_alice = {**env, "PARLEY_TOKEN": alice.token}
    where = ("--channel", channel, "--message", message["message_id"])

    edited = await parley(as_alice, "edit", *where, "no typo")
    [state] = await api.history(bob, channel)
    assert (edited.code, edited.err, state["text"]) == (0, "", "no typo")
    assert int(edited.out) > int(message["message_id"])  # the edit's own id, later in the channel

    not_hers = await parley({**env, "PARLEY_TOKEN": bob.token}, "edit", *where, "bob's now")
    assert not_hers == Ran(
        1, "", "parley edit: not edited: forbidden: only its sender edits a message\n"
    )

    deleted = await parley(as_alice, "delete", *where)
    [state] = await api.history(bob, channel)
    assert (deleted.code, deleted.err, state["deleted"]) == (0, "", True)
    assert int(deleted.out) > int(edited.out)


async def test_search_finds_words_of_any_script_and_edited_text_in_a_script_and_in_the_chat(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, direct = await friends_with_a_chat(api)
    team = await api.group(alice, [bob.user_id], name="team")
    other = await api.connect(bob)
    await other.accepted(await other.send_message(team, "오늘 한국어 공부를 했어요"))
    typo = await other.send_message(direct, "see you at the caffe")
    echo = await other.until(lambda f: f["type"] == "message" and f["client_msg_id"] == typo)
    await other.accepted(await other.edit(direct, echo["message_id"], "the café, tomorrow"))
    for i in range(21):  # a page and one more for the chat's /search
        await other.accepted(await other.send_message(team, f"note {i}"))

    async def indexed() -> bool:  # the indexer runs behind delivery
        found = [
            len((await api.search(alice, q, limit=100))["results"])
            for q in ("한국", "tomorrow", "note")
        ]
        return found == [1, 1, 21]

    await eventually(indexed, TIMEOUT_S, "the messages and the edit in the search index")
    [in_team] = [m for m in await api.history(alice, team) if m["text"].startswith("오늘")]
    [now] = await api.history(alice, direct)
    b, as_alice = bob.username, {**env, "PARLEY_TOKEN": alice.token}
    korean_line = hit(in_team, "#team", b, "오늘 [한국]어 공부를 했어요")
    edited_line = hit(now, b, b, "the café, [tomorrow]")

    # The one-shot, as a script runs it (the runs at once: each is a process of its own).
    [result] = (await api.search(alice, "tomorrow"))["results"]
    notes = (await api.search(alice, "note", limit=21))["results"]
    note_lines = [
        f"{r['message']['message_id']} {hit(r['message'], '#team', b, f'[note] {20 - i}')}"
        for i, r in enumerate(notes)
    ]
    newest, third = notes[0]["message"]["message_id"], notes[2]["message"]["message_id"]
    found, as_json, paged, too_long = await asyncio.gather(
        parley(as_alice, "search", "한국"),
        parley(as_alice, "search", "tomorrow", "--channel", b, "--json"),
        parley(as_alice, "search", "note", "--before", newest, "--limit", "2"),
        parley(as_alice, "search", "한" * 201),
    )
    assert found == Ran(0, f"{in_team['message_id']} {korean_line}\n", "")
    assert (as_json.code, [orjson.loads(line) for line in as_json.out.splitlines()]) == (
        0,
        [result],
    )
    assert result["message"]["text"] == "the café, tomorrow"
    assert (await api.search(alice, "caffe"))["results"] == []  # the text before the edit
    more = f"parley search: more with --before {third}\n"
    assert paged == Ran(0, "".join(f"{line}\n" for line in note_lines[1:3]), more)
    assert too_long == Ran(1, "", "parley search: invalid: q must be 1-200 characters\n")

    # The chat, as a person types it.
    terminal = spawn_chat(env, tmp_path, "--username", alice.username)

    async def expect(text: str) -> None:
        await asyncio.to_thread(terminal.expect, re.escape(text))

    try:
        await expect("Your channels:")
        terminal.sendline("/search 한국")
        await expect(f"🔎 {korean_line}\r\n-- end of results --")
        terminal.sendline("/search tomorrow")
        await expect(f"🔎 {edited_line}\r\n-- end of results --")
        terminal.sendline("/search note")
        in_chat = [f"🔎 {line.split(' ', 1)[1]}" for line in note_lines]  # the same, with no id
        await expect("\r\n".join([*in_chat[:20], "(/search more shows older results)"]))
        terminal.sendline("/search more")
        await expect(f"{in_chat[20]}\r\n-- end of results --")
        terminal.sendline("/search more")
        await expect("! /search more: no more results")
        terminal.sendline("/search")
        await expect("! /search takes the words to look for (then /search more for older results)")
        terminal.sendline("/search " + "x" * 201)
        await expect("! invalid: q must be 1-200 characters")
        terminal.sendline("/quit")
        await asyncio.to_thread(terminal.expect, pexpect.EOF)
    finally:
        terminal.close(force=True)
        terminal.logfile_read.close()
    assert terminal.exitstatus == 0, terminal.before


async def test_a_chat_whose_device_is_logged_out_ends_with_a_clear_message(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice = await api.new_device("alice")
    terminal = spawn_chat(env, tmp_path, "--username", alice.username)  # password from env
    try:
        await asyncio.to_thread(terminal.expect, re.escape("No channels yet"))
        stored = tmp_path / "config" / "session.json"
        await api.revoke_device(alice, orjson.loads(stored.read_bytes())["device_id"])
        ended = f"parley chat: {alice.username}'s login on this machine no longer works"
        await asyncio.to_thread(terminal.expect, re.escape(ended + ": run `parley chat` again"))
        await asyncio.to_thread(terminal.expect, pexpect.EOF)
    finally:
        terminal.close(force=True)
        terminal.logfile_read.close()
    assert terminal.exitstatus == 1
    assert not stored.exists()


async def test_a_chat_reports_a_message_and_ends_when_the_operator_suspends_the_user(
    api: Api, env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    group = await api.group(bob, [alice.user_id], "market")
    spammer = await api.connect(bob)
    await spammer.accepted(await spammer.send_message(group, "cheap pills, click here"))
    terminal = spawn_chat(env, tmp_path, "--username", alice.username)

    async def expect(text: str) -> None:
        await asyncio.to_thread(terminal.expect, re.escape(text))

    token = "operator-token-for-the-terminal-tests-0123"
    try:
        await expect("Your channels:")
        terminal.sendline("1")
        await expect("cheap pills, click here")
        terminal.sendline("/report 1 boring")
        await expect("! /report takes a message's number, a reason (spam, harassment")
        terminal.sendline("/report #1 spam a link to a scam")
        await expect("⚑ reported #1 as spam")
        [report] = await api.channel_reports(bob, group)
        assert (report["reason"], report["note"]) == ("spam", "a link to a scam")

        async with (
            extra_gateway(stack, PARLEY_ADMIN_TOKEN=token) as admin,
            Api(admin.url) as operator,
        ):
            await operator.suspend(Operator(token), alice.user_id)
        await expect(f"parley chat: {alice.username}: this account is suspended by the operator")
        await asyncio.to_thread(terminal.expect, pexpect.EOF)
    finally:
        terminal.close(force=True)
        terminal.logfile_read.close()
    assert terminal.exitstatus == 1


async def test_the_connection_resumes_after_a_drop_with_no_gap_and_no_duplicate(api: Api) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    frames: list[Frame] = []
    statuses: list[str] = []

    async def keep(frame: Frame) -> None:
        frames.append(frame)

    def texts() -> list[str]:
        return [f["text"] for f in frames if f["type"] == "message"]

    async with Client(api.base_url) as client:
        heads = {c["channel_id"]: c["last_message_id"] for c in await client.channels(alice)}
        link = ReconnectingSession(client, alice, heads, Handlers(keep, statuses.append))
        running = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(link.synced.wait(), TIMEOUT_S)
            sender = await api.connect(bob)
            await sender.accepted(await sender.send_message(channel, "before the drop"))
            await eventually(lambda: _true(texts() == ["before the drop"]), TIMEOUT_S, "live")

            assert link.session is not None
            await link.session.abort()  # a vanished network: no close frame
            await link.send(channel, "typed while away")  # queued until the socket is back
            for text in ("sent during the gap 1", "sent during the gap 2"):
                await sender.accepted(await sender.send_message(channel, text))
            await eventually(lambda: _true(len(texts()) == 4), TIMEOUT_S, "the resumed sync")
            await sender.send_message(channel, MARK)  # a late duplicate would come before it
            await eventually(lambda: _true(MARK in texts()), TIMEOUT_S, "the mark")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await link.close()

    got = texts()[: texts().index(MARK)]
    assert got[0] == "before the drop"
    assert sorted(got[1:]) == [
        "sent during the gap 1",
        "sent during the gap 2",
        "typed while away",
    ]
    ids = [int(f["message_id"]) for f in frames if f["type"] == "message"]
    assert ids == sorted(set(ids))  # in order, each once
    assert any(s.startswith("connection lost (closed_1006)") for s in statuses), statuses
    assert "reconnected" in statuses
    stored = await api.history(bob, channel)
    assert [m["text"] for m in stored].count("typed while away") == 1
    assert [int(m["message_id"]) for m in stored] == ids


async def _true(value: bool) -> bool:
    return value


async def test_invite_join_and_export_commands_and_the_chats_invite_and_join(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob = await api.new_device("alice"), await api.new_device("bob")
    # Carol and Dave let nobody add them: a link is their own choice.
    carol, dave = [await api.new_device(p, group_adds="nobody") for p in ("carol", "dave")]
    group = await api.group(alice, [bob.user_id], name="walkers")
    as_alice = {**env, "PARLEY_TOKEN": alice.token}

    made = await parley(as_alice, "invite", "--channel", "walkers", "--uses", "2")
    assert (made.code, made.err) == (0, "")
    code = made.out.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", code)
    [listed] = await api.invites(alice, group)
    assert (listed["code_prefix"], listed["max_uses"]) == (code[:6], 2)
    not_manager = await parley({**env, "PARLEY_TOKEN": bob.token}, "invite", "-c", group)
    assert not_manager.code == 1
    assert not_manager.err.startswith("parley invite: forbidden: ")

    # The code, or the web app's link that holds it.
    as_carol = {**env, "PARLEY_TOKEN": carol.token}
    joined = await parley(as_carol, "join", f"{api.base_url}/#join={code}")
    assert joined == Ran(0, f"joined walkers ({group})\n", "")
    assert group in [c["channel_id"] for c in await api.channels(carol)]
    bad = await parley(as_carol, "join", "../../v1/users/me")
    assert bad == Ran(1, "", "parley join: not an invite code or link: '../../v1/users/me'\n")
    unknown = await parley(as_carol, "join", "A" * 24)
    assert unknown.code == 1
    assert unknown.err.startswith("parley join: not_found: invite (it may have been revoked")

    # An export: the NDJSON as the server streams it.
    sender = await api.connect(carol)
    await sender.accepted(await sender.send_message(group, "carol was here"))
    await sender.until(lambda f: f["type"] == "message" and f["text"] == "carol was here")
    exported = await parley(as_carol, "export")
    assert (exported.code, exported.err) == (0, "")
    lines = [orjson.loads(line) for line in exported.out.splitlines()]
    assert lines[1]["type"] == "account" and lines[1]["user_id"] == carol.user_id
    assert [m["text"] for m in lines if m["type"] == "message"] == ["carol was here"]
    assert lines[-1] == {"type": "end", "messages": 1}

    # In the chat: /invite in the open group, /join by another user.
    terminal = spawn_chat({**env, "PARLEY_PASSWORD": ""}, tmp_path)

    async def expect(text: str) -> None:
        await asyncio.to_thread(terminal.expect, re.escape(text))

    try:
        await expect("Username:")
        terminal.sendline(alice.username)
        await expect("Password:")
        terminal.sendline(PASSWORD)
        await expect("Your channels:")
        terminal.sendline("/invite")
        await expect("! /invite: open a group first")
        terminal.sendline("walkers")
        await expect("== #walkers ==")
        terminal.sendline("/invite 2")
        await asyncio.to_thread(terminal.expect, r"invite code \(shown this once\): (\S{24})")
        chat_code = terminal.match.group(1)
        assert (await api.join_by_invite(dave, chat_code))["channel_id"] == group
        terminal.sendline(f"/join {chat_code}")  # a member already: the group opens again
        await expect("== #walkers ==")
        terminal.sendline("/join nonsense")
        await expect("! /join: not an invite code or link: 'nonsense'")
        terminal.sendline("/quit")
        await asyncio.to_thread(terminal.expect, pexpect.EOF)
    finally:
        terminal.close(force=True)
        terminal.logfile_read.close()
    assert terminal.exitstatus == 0, terminal.before
