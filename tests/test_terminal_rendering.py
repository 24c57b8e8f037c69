"""What users and the server write never reaches the terminal raw: `terminal.rendering.visible`
on its own (any text), in every line the terminal client makes, and end to end on the real
stack, where a message of ESC[2J, BEL, CR, CSI, OSC 52 and a bidi override goes through
`parley history`, `parley search` and the interactive `parley chat` and shows as escapes."""

from __future__ import annotations

import asyncio
import re
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import orjson
import pexpect
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parley_client import ApiError, ChangeFrame, Channel, Message, SearchResult, SessionError
from terminal.chat import Chat, OpenChat, say
from terminal.directory import Directory, marked
from terminal.rendering import json_line, rendered_errors, visible
from terminal.timeline import Timeline
from tests.conftest import Api, eventually
from tests.test_terminal_client import TIMEOUT_S, Ran, friends_with_a_chat, parley

ATTACK = (
    "hi\x1b[2J\x07 there\rmallory: pwned \x9b31m red \x9d52;c;aGVsbG8=\x07 "
    "\u202egnp.exe\u2028\u2066x\u2069\nsecond line"
)
"""Clears the screen, rings, rewrites the line's start (who it seems to come from), turns the
text red by the one-byte CSI, writes the clipboard by the one-byte OSC 52, reverses the rest,
breaks the line by U+2028 and isolates; then a real second line."""
ATTACK_SHOWN = (
    "hi<U+001B>[2J<U+0007> there<U+000D>mallory: pwned <U+009B>31m red "
    "<U+009D>52;c;aGVsbG8=<U+0007> <U+202E>gnp.exe<U+2028><U+2066>x<U+2069>"
)
"""Its first line as the terminal client shows it."""
RAW = ("\x1b[2J", "\x07", "\rmallory", "\x9b", "\x9d", "\u202e", "\u2028", "\u2066", "\u2069")
"""Pieces of ATTACK that must never reach the terminal."""

SAFE_FORMAT = {"\u200c", "\u200d"}
ESCAPED = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def unsafe(char: str, multiline: bool) -> bool:
    """A character `visible` must never let through."""
    if char == "\t" or (multiline and char == "\n") or char in SAFE_FORMAT:
        return False
    return unicodedata.category(char) in ESCAPED


# --- visible, for any text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "<U+001B>[2J"),
        ("bell\x07", "bell<U+0007>"),
        ("a\rb\bc\x00\x7f", "a<U+000D>b<U+0008>c<U+0000><U+007F>"),
        ("\x9b31m\x9d52;c;eA==\x9c", "<U+009B>31m<U+009D>52;c;eA==<U+009C>"),
        ("\u202aa\u202bb\u202cc\u202dd\u202ee", "<U+202A>a<U+202B>b<U+202C>c<U+202D>d<U+202E>e"),
        ("\u2066\u2067\u2068\u2069", "<U+2066><U+2067><U+2068><U+2069>"),
        (
            "\u200e\u200f\u061c\u200b\ufeff\u00ad",
            "<U+200E><U+200F><U+061C><U+200B><U+FEFF><U+00AD>",
        ),
        ("a\u2028b\u2029c", "a<U+2028>b<U+2029>c"),
        ("\U000e0041\ud800", "<U+E0041><U+D800>"),
        ("tab\tkept", "tab\tkept"),
        (
            "👨\u200d👩\u200d👧 مرحبا 한국어 café\u00a0ok",
            "👨\u200d👩\u200d👧 مرحبا 한국어 café\u00a0ok",
        ),
    ],
)
def test_visible_writes_controls_and_format_characters_as_code_points(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert visible(raw, multiline=True) == shown


def test_a_line_feed_is_kept_in_multiline_text_only() -> None:
    assert visible("one\ntwo", multiline=True) == "one\ntwo"
    assert visible("one\ntwo") == "one<U+000A>two"
    assert visible("one\r\ntwo", multiline=True) == "one<U+000D>\ntwo"


ANY_TEXT = st.one_of(
    st.text(),
    # Weighted to the characters that matter, lone surrogates included.
    st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Zs", "Lo", "So", "Mn"])),
)


@given(ANY_TEXT, st.booleans())
@example(ATTACK, True)
@example(ATTACK, False)
def test_visible_lets_no_control_bidi_or_format_character_through(text: str, multi: bool) -> None:
    shown = visible(text, multi)
    assert not [c for c in shown if unsafe(c, multi)]
    shown.encode("utf-8")  # no lone surrogate left: it can be written to a terminal
    assert visible(shown, multi) == shown  # rendering twice changes nothing
    assert visible(shown, True) == shown


@given(st.text(st.characters().filter(str.isprintable)))
def test_visible_leaves_printable_text_as_it_is(text: str) -> None:
    assert visible(text) == text
    assert visible(text, multiline=True) == text


@given(st.text(st.characters().filter(lambda c: c.isprintable() or c in "\n\t")))
def test_visible_leaves_printable_lines_as_they_are(text: str) -> None:
    assert visible(text, multiline=True) == text


@given(ANY_TEXT.filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)))
@example(ATTACK)
def test_json_lines_hide_every_control_and_format_character_and_decode_exactly(
    text: str,
) -> None:
    value = {"text": text, "names": [text]}
    line = json_line(value)
    assert not [c for c in line if unsafe(c, False)]
    assert orjson.loads(line) == value


def test_json_output_escapes_every_c0_control_itself() -> None:
    """`--json` prints orjson's bytes, exact: the C0 controls (ESC, BEL, CR) are `\\uXXXX`
    escapes there; what decodes is the text as it was sent."""
    message = {"message_id": "12", "text": ATTACK, "sender_id": "3"}
    dumped = orjson.dumps(message)
    assert not [b for b in dumped if b < 0x20 or b == 0x7F]
    assert b"\\u001b[2J\\u0007 there\\rmallory" in dumped
    assert orjson.loads(dumped) == message


# --- every line the terminal client makes ---------------------------------------------------

SENT_AT = "2026-01-02T03:04:05Z"


def a_message(text: str, **more: object) -> Message:
    return {  # type: ignore[return-value]
        "message_id": "100",
        "channel_id": "7",
        "sender_id": "2",
        "client_msg_id": "c1",
        "sent_at": SENT_AT,
        "text": text,
        **more,
    }


def liar() -> Directory:
    """A directory whose names try to pass for other lines and hide controls."""
    return Directory("1", {"1": "me", "2": "bob\n[03:04] alice\x1b[2J\u202e"})


def test_a_name_is_one_line_and_a_message_line_shows_the_text_made_visible() -> None:
    directory = liar()
    assert directory.name_of("2") == "bob<U+000A>[03:04] alice<U+001B>[2J<U+202E>"
    reactions = {"👍\x07": ["1"], "\u202e": ["1", "2"]}
    line = directory.line(a_message(ATTACK, reactions=reactions), with_id=True)
    name = directory.name_of("2")
    sent = datetime.fromisoformat(SENT_AT.replace("Z", "+00:00")).astimezone()
    assert line == (
        f"100 [{sent:%H:%M}] {name}: {ATTACK_SHOWN}\n    second line  [👍<U+0007> 1 <U+202E> 2]"
    )
    assert line.count("\n") == 1  # the text's own line feed only
    assert not [c for c in line if unsafe(c, True)]


def test_a_message_that_mentions_the_user_is_marked_at_the_start_of_its_line() -> None:
    directory = Directory("1", {"1": "me", "2": "bob"})
    sent = datetime.fromisoformat(SENT_AT.replace("Z", "+00:00")).astimezone()
    mention = a_message("hi @me", mentions=["1"])
    assert directory.line(mention, number=3) == f"@ #3 [{sent:%H:%M}] bob: hi @me"
    other = a_message("hi @carol", mentions=["3"])
    assert directory.line(other, number=4) == f"#4 [{sent:%H:%M}] bob: hi @carol"
    gone = a_message("", mentions=["1"], deleted=True)
    assert directory.line(gone, number=5) == f"#5 [{sent:%H:%M}] bob: [deleted]"


def test_a_text_that_grows_under_nfkc_is_rendered_as_written_in_work_of_its_own_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100,000 x U+FDFA is 1.8M characters in NFKC form; the terminal shows the characters
    as written (the terminal draws each), so rendering it never normalises, and a control in
    it costs its own escape, not work over an expanded form."""
    normalised: list[str] = []
    nfkc = unicodedata.normalize

    def counted(form: str, text: str) -> str:
        normalised.append(form)
        return nfkc(form, text)

    monkeypatch.setattr(unicodedata, "normalize", counted)
    huge = "\ufdfa" * 100_000
    assert visible(huge) is huge and visible(huge, multiline=True) is huge
    line = liar().line(a_message(huge + "\x07"), with_id=False)
    assert line.endswith(huge + "<U+0007>") and len(line) < len(huge) + 100
    assert normalised == []


def test_channel_titles_snippets_and_search_lines_are_one_line_and_visible() -> None:
    directory = liar()
    group: Channel = {  # type: ignore[typeddict-item]
        "channel_id": "7",
        "type": "group",
        "name": "team\u202e\n#evil",
        "members": ["1", "2"],
    }
    direct: Channel = {"channel_id": "8", "type": "direct", "members": ["1", "2"]}  # type: ignore[typeddict-item]
    assert directory.title(group) == "#team<U+202E><U+000A>#evil"
    assert directory.title(direct) == directory.name_of("2")
    snippet = [{"text": "a\x1b]52;c;x\x07 ", "match": False}, {"text": "\x9bpwned", "match": True}]
    assert marked(snippet) == "a<U+001B>]52;c;x<U+0007> [<U+009B>pwned]"  # type: ignore[arg-type]
    result: SearchResult = {  # type: ignore[typeddict-item]
        "message": a_message("x"),
        "channel": {"channel_id": "9", "name": "gone\x1b", "type": "group"},
        "snippet": [{"text": "line\nnext\r", "match": False}],
    }
    found = directory.found(result, [group, direct], with_id=True)
    assert found.endswith(f"] {directory.name_of('2')}: line next<U+000D>")
    assert "#gone<U+001B>" in found
    assert not [c for c in found if unsafe(c, False)]


def test_a_change_line_shows_the_new_text_and_emoji_made_visible() -> None:
    timeline = Timeline()
    number = timeline.add(a_message("before"))
    edit: ChangeFrame = {  # type: ignore[typeddict-item]
        "type": "edit",
        "message_id": "101",
        "target_id": "100",
        "sender_id": "2",
        "sent_at": SENT_AT,
        "text": ATTACK,
    }
    line = timeline.describe(edit, "bob")
    assert line == f"~ bob edited #{number}: {ATTACK_SHOWN}\n    second line"
    reaction: ChangeFrame = {**edit, "type": "reaction", "emoji": "\x1b[5m"}  # type: ignore[typeddict-item]
    assert timeline.describe(reaction, "bob") == f"~ bob reacted <U+001B>[5m to #{number}"


def test_the_prompt_shows_the_chat_and_who_is_typing_made_visible() -> None:
    directory = liar()
    group: Channel = {  # type: ignore[typeddict-item]
        "channel_id": "7",
        "type": "group",
        "name": "team\x1b]52;c;eA==\x07",
        "members": ["1", "2"],
    }
    chat = OpenChat(group)
    prompt = SimpleNamespace(open=chat, directory=directory)
    assert Chat.prompt_text(prompt) == "#team<U+001B>]52;c;eA==<U+0007>> "  # type: ignore[arg-type]
    chat.typists.typing("2", 5000)
    assert Chat.prompt_text(prompt) == (  # type: ignore[arg-type]
        f"{directory.name_of('2')} is typing…\n#team<U+001B>]52;c;eA==<U+0007>> "
    )


def test_what_the_chat_says_is_made_visible(capsys: pytest.CaptureFixture[str]) -> None:
    say(f"! refused: invalid: {ATTACK}")
    assert capsys.readouterr().out == f"! refused: invalid: {ATTACK_SHOWN}\nsecond line\n"


def test_the_servers_words_in_errors_are_made_visible() -> None:
    with pytest.raises(ApiError) as api_error, rendered_errors():
        raise ApiError("GET", "/v1/x", 400, "bad\x1b", "no\n\x9b2J", 1.5)
    assert (api_error.value.code, api_error.value.message) == (
        "bad<U+001B>",
        "no<U+000A><U+009B>2J",
    )
    assert (api_error.value.status, api_error.value.retry_after_s) == (400, 1.5)
    with pytest.raises(SessionError) as session_error, rendered_errors():
        raise SessionError("error_x\x07", "detail\r", 4000, "why\u202e")
    refused = session_error.value
    assert (refused.kind, refused.detail, refused.close_reason) == (
        "error_x<U+0007>",
        "detail<U+000D>",
        "why<U+202E>",
    )


# --- end to end: a hostile message through the terminal commands ----------------------------


def assert_nothing_raw(screen: str) -> None:
    leaked = [piece for piece in RAW if piece in screen]
    assert not leaked, (leaked, screen)


async def test_history_and_search_show_a_hostile_message_made_visible_and_json_exact(
    api: Api, env: dict[str, str]
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    sender = await api.connect(bob)
    await sender.accepted(await sender.send_message(channel, ATTACK))
    await sender.until(lambda f: f["type"] == "message")  # delivered once stored
    [message] = await api.history(alice, channel)
    assert message["text"] == ATTACK  # the server keeps it as it was sent

    async def indexed() -> bool:
        return len((await api.search(alice, "pwned"))["results"]) == 1

    await eventually(indexed, TIMEOUT_S, "the message in the search index")
    as_alice = {**env, "PARLEY_TOKEN": alice.token}
    history, as_json, found, found_json = await asyncio.gather(
        parley(as_alice, "history", "--channel", channel),
        parley(as_alice, "history", "--channel", channel, "--json"),
        parley(as_alice, "search", "pwned"),
        parley(as_alice, "search", "pwned", "--json"),
    )
    sent = datetime.fromisoformat(message["sent_at"].replace("Z", "+00:00"))
    first = f"[{sent:%H:%M}] {bob.username}: {ATTACK_SHOWN}"
    assert history == Ran(0, f"{message['message_id']} {first}\n    second line\n", "")
    assert_nothing_raw(history.out)

    # --json is the API's data, exact: the C0 controls are JSON escapes, never raw bytes.
    assert as_json.code == 0
    assert [orjson.loads(line) for line in as_json.out.split("\n")[:-1]] == [message]
    assert not re.search(r"[\x00-\x1f\x7f]", as_json.out.rstrip("\n"))
    assert_nothing_raw(as_json.out)  # nor C1, bidi or format characters: JSON escapes

    # The snippet (the whole text, here) on one line: its line feed a space.
    where = f"user {alice.user_id} & {bob.username}"  # a bare token does not know its user
    snippet = ATTACK_SHOWN.replace("pwned", "[pwned]") + " second line"
    line = f"{message['message_id']} [{where} {sent:%H:%M}] {bob.username}: {snippet}"
    assert found == Ran(0, f"{line}\n", "")
    assert_nothing_raw(found.out)
    [result] = [orjson.loads(line) for line in found_json.out.split("\n")[:-1]]
    assert result["message"] == message
    assert not re.search(r"[\x00-\x1f\x7f]", found_json.out.rstrip("\n"))
    assert_nothing_raw(found_json.out)


async def test_the_chat_shows_hostile_messages_edits_and_results_made_visible(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, channel = await friends_with_a_chat(api)
    # Names refuse C0 and C1 controls, not a bidi override.
    team = await api.group(bob, [alice.user_id], name="team\u202eevil")
    listener = await api.connect(bob)
    async with listener.heartbeating(0.5):
        await listener.accepted(await listener.send_message(channel, ATTACK))
        screen_log = tmp_path / "terminal.log"
        terminal = pexpect.spawn(
            sys.executable,
            ["-m", "parley.cli", "chat", "--username", alice.username],
            env={**env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"},
            encoding="utf-8",
            timeout=TIMEOUT_S,
            dimensions=(50, 250),
        )
        terminal.logfile_read = screen_log.open("w", encoding="utf-8")

        async def expect(text: str) -> None:
            await asyncio.to_thread(terminal.expect, re.escape(text))

        b = bob.username
        try:
            await expect("Your channels:")
            await expect(". #team<U+202E>evil (2 members)")
            terminal.sendline(f"/open {b}")
            await expect("#1 ")
            await expect(f"{b}: {ATTACK_SHOWN}\r\n    second line")  # from history

            await listener.accepted(await listener.send_message(channel, f"live {ATTACK}"))
            await expect("#2 ")
            await expect(f"{b}: live {ATTACK_SHOWN}\r\n    second line")  # as it arrives
            await listener.accepted(await listener.send_message(team, ATTACK))
            await expect(f"(new in #team<U+202E>evil) {b}: {visible(ATTACK[:60])}")

            [first, _] = await api.history(bob, channel)
            await listener.accepted(await listener.edit(channel, first["message_id"], ATTACK))
            await expect(f"~ {b} edited #1: {ATTACK_SHOWN}\r\n    second line")

            async def indexed() -> bool:
                return len((await api.search(alice, "pwned"))["results"]) == 3

            await eventually(indexed, TIMEOUT_S, "the messages in the search index")
            terminal.sendline("/search pwned")
            snippet = ATTACK_SHOWN.replace("pwned", "[pwned]") + " second line"
            await expect(f"] {b}: {snippet}\r\n")
            await expect("-- end of results --")

            terminal.sendline("/quit")
            await asyncio.to_thread(terminal.expect, pexpect.EOF)
        finally:
            terminal.close(force=True)
            terminal.logfile_read.close()
        assert terminal.exitstatus == 0, terminal.before
    assert_nothing_raw(screen_log.read_text(encoding="utf-8"))
