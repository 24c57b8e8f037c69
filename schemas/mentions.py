"""Mentions: `@username` in a message's text.

The pipeline (processors/pipeline.py), the channel's one writer, resolves the names of a new
message against the channel's members at that point of its order and stores the result in the
message (`mentions`: user ids), so a replay, which reads the stored rows, gives the same. A
name that is no user, a user who is not a member, one who has a block with the sender (either
way), and the sender themself mention nobody. Usernames are lower case (`a-z 0-9 _ . -`), so a
name is case-folded; a final `.` or `-` (the end of a sentence) is not part of it unless the
whole name is some user's. A text without `@` costs nothing.
"""

from __future__ import annotations

import re

from schemas.limits import MAX_MENTIONS

# `@` at the start or after a character that cannot be in a name (not "me@example.org").
_MENTION = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,32})(?![A-Za-z0-9_.-])")


def mentioned_names(text: str) -> list[tuple[str, ...]]:
    """The names the text mentions, case-folded, in order, each once, at most MAX_MENTIONS:
    each as its alternatives, the whole name first, then (when it ends in `.`, `-` or `_`) the
    name without them."""
    if "@" not in text:
        return []
    names: dict[tuple[str, ...], None] = {}
    for match in _MENTION.finditer(text):
        name = match.group(1).lower()
        bare = name.rstrip(".-_")
        names[(name, bare) if bare != name and len(bare) >= 3 else (name,)] = None
        if len(names) >= MAX_MENTIONS:
            break
    return list(names)


def resolve(
    names: list[tuple[str, ...]], users: dict[str, str], members: set[str], sender: str
) -> list[str]:
    """The user ids `names` mention, in order, each once, at most MAX_MENTIONS: `users` maps a
    name to the user who has it (and may be mentioned by the sender); of each name's
    alternatives the first that is such a user counts, if they are a member of the channel
    other than the sender."""
    found: dict[str, None] = {}
    for alternatives in names:
        user_id = next((users[n] for n in alternatives if n in users), None)
        if user_id is not None and user_id in members and user_id != sender:
            found[user_id] = None
    return list(found)[:MAX_MENTIONS]
