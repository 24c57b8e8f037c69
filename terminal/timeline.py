"""The open chat as the terminal shows it: each message printed gets a short number (`#3`) that
`/edit`, `/delete` and `/react` name it by, and its latest state, which the channel's changes
(`edit`, `delete` and `reaction` rows, in the channel's order) keep up to date as they arrive;
and who is typing, until their `typing` frame expires."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from parley_client import ChangeFrame, Message, Quote
from terminal.rendering import visible

QUOTE_CHARS = 200  # what a reply shows of the text it answers (as the server cuts it)


@dataclass(slots=True)
class Timeline:
    """The messages on screen, by id and by number. Numbers count up from 1 in the order
    messages are printed (older pages from `/more` included), and are never reused while the
    chat is open."""

    numbers: dict[str, int] = field(default_factory=dict)
    """message_id -> its number on screen."""
    by_number: dict[int, str] = field(default_factory=dict)
    states: dict[str, Message] = field(default_factory=dict)
    """message_id -> the message in its latest state."""

    def add(self, message: Message) -> int:
        """Keep the message (as history or a live frame gave it); returns its number."""
        message_id = message["message_id"]
        self.states[message_id] = message
        if message_id not in self.numbers:
            number = len(self.numbers) + 1
            self.numbers[message_id] = number
            self.by_number[number] = message_id
        return self.numbers[message_id]

    def message_id(self, number: str) -> str | None:
        """The id of the message shown as `#number` (`3` or `#3`), None if none is."""
        digits = number.removeprefix("#")
        return self.by_number.get(int(digits)) if digits.isdigit() else None

    def number_of(self, message_id: str) -> int | None:
        return self.numbers.get(message_id)

    def newest_at_or_before(self, message_id: str) -> int | None:
        """The number of the newest message on screen not after `message_id` (a read marker
        may name a change, or a message before the page)."""
        upto = int(message_id)
        shown = [int(m) for m in self.numbers if int(m) <= upto]
        return self.numbers[str(max(shown))] if shown else None

    def apply(self, change: ChangeFrame) -> None:
        """Apply a change to the message it names, as docs/protocol.md says: one not on screen,
        or deleted already, is left alone."""
        target = self.states.get(change["target_id"])
        if target is None or target.get("deleted"):
            return
        if change["type"] == "edit":
            target["text"], target["edited_at"] = change["text"], change["sent_at"]
            self.requote(change["target_id"], {"text": change["text"][:QUOTE_CHARS]})
        elif change["type"] == "delete":
            target.pop("edited_at", None)
            target.pop("reactions", None)
            target["text"], target["deleted"] = "", True
            self.requote(change["target_id"], {"text": "", "deleted": True})
            target.pop("pinned_by", None)
            target.pop("pinned_at", None)
        elif change["type"] == "pin":
            if "refused" not in change:
                target["pinned_by"], target["pinned_at"] = change["sender_id"], change["sent_at"]
        elif change["type"] == "unpin":
            target.pop("pinned_by", None)
            target.pop("pinned_at", None)
        else:
            reactions = target.setdefault("reactions", {})
            who = set(reactions.get(change.get("emoji", ""), ()))
            if change.get("removed"):
                who.discard(change["sender_id"])
            else:
                who.add(change["sender_id"])
            emoji = change.get("emoji", "")
            if who:
                reactions[emoji] = sorted(who)
            else:
                reactions.pop(emoji, None)
            if not reactions:
                del target["reactions"]

    def requote(self, message_id: str, fields: dict[str, Any]) -> None:
        """The quotes of the replies to `message_id` on screen, after its edit or delete."""
        for reply in self.states.values():
            quote = reply.get("quote")
            if reply.get("reply_to") == message_id and quote is not None:
                reply["quote"] = cast(Quote, {**quote, **fields})

    def describe(self, change: ChangeFrame, sender: str) -> str:
        """One line for a change: `~ alice edited #3: new text`, `~ alice deleted #3`,
        `~ bob reacted 👍 to #3` (without the number when the message is not on screen).
        `sender` is shown as it is given (a name the Directory rendered); the change's text and
        emoji are made visible here."""
        number = self.number_of(change["target_id"])
        ref = f" #{number}" if number is not None else ""
        if change["type"] == "edit":
            text = change["text"].replace("\n", "\n    ")
            return visible(f"~ {sender} edited{ref}: {text}", multiline=True)
        if change["type"] == "delete":
            return f"~ {sender} deleted{ref or ' a message'}"
        if change["type"] == "pin":
            if "refused" in change:
                return f"~ {sender} could not pin{ref or ' a message'}: the chat has 50 pins"
            return f"~ {sender} pinned{ref or ' a message'}"
        if change["type"] == "unpin":
            return f"~ {sender} unpinned{ref or ' a message'}"
        emoji = visible(change.get("emoji", ""))
        if change.get("removed"):
            return f"~ {sender} took back {emoji}{' from' + ref if ref else ''}"
        return f"~ {sender} reacted {emoji}{' to' + ref if ref else ''}"


@dataclass(slots=True)
class Typists:
    """Who is typing in the open chat: each until their `typing` frame's `expires_in_ms` is
    over, or until their next message arrives."""

    clock: Callable[[], float] = time.monotonic
    until: dict[str, float] = field(default_factory=dict)
    """user_id -> when (on `clock`) their typing expires."""

    def typing(self, user_id: str, expires_in_ms: int) -> None:
        self.until[user_id] = self.clock() + expires_in_ms / 1000

    def stopped(self, user_id: str) -> bool:
        """Their message came: no longer typing. True if they were shown typing."""
        return self.until.pop(user_id, None) is not None

    def clear(self) -> None:
        self.until.clear()

    def now_typing(self) -> list[str]:
        """Those still typing, in the order they started; the expired are forgotten."""
        now = self.clock()
        for user_id in [u for u, t in self.until.items() if t <= now]:
            del self.until[user_id]
        return list(self.until)
