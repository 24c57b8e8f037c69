"""Snippets: the part of a message around what a query matched, as plain-text parts.

A snippet is a list of parts, each `(text, match)`; `match` marks the characters the query
found. Clients render each part as text (bold for matches): no markup is ever inside, so no
client needs innerHTML, and no offsets need agreeing on (code points or UTF-16 units). The
text is the message's NFKC form (storage/search/tokens.py), which may differ from `text` in
compatibility characters (full-width letters show as ASCII).

**Bounded work per snippet**, whatever the text's length and however NFKC lengthens it (a
search answers up to 100 of them, in a thread beside the gateway's loop):
- *How far it looks.* A text NFKC leaves as it is (most text, in every script) is its own
  normalised form: it is looked through up to `MAX_SEARCH_CHARS` (what search reads), in C.
  A text NFKC changes (compatibility characters: full-width letters, ligatures, U+FDFA, which
  becomes 18 characters) is normalised only up to `SCAN_NORMALISED_CHARS`: a first match
  past them is not looked for, and the snippet shows the text's beginning.
- *Where the first match is.* The normalised text is read in blocks of `BLOCK_CHARS`, each
  case-folded and tested for the tokens as substrings (in C). Only a block holding one is cut
  into words in Python (`match_spans`), at most `MAX_CUT_BLOCKS` of them (a token may occur
  inside longer words, block after block): past that the snippet shows the text's beginning.
- *The snippet* cuts only its own `SNIPPET_CHARS` (and one word past them) into words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from storage.search.tokens import (
    MAX_SEARCH_CHARS,
    MAX_WORD_CHARS,
    case_fold,
    fold,
    normalise,
    runs,
)

SNIPPET_CHARS = 160  # characters of the message a snippet shows at most
LEAD_CHARS = 40  # of them, before the first match
ELLIPSIS = "…"
SCAN_NORMALISED_CHARS = 20_000  # of a text NFKC changes, looked through for the first match
BLOCK_CHARS = 256  # the first match is looked for a block at a time
MAX_CUT_BLOCKS = 4  # blocks holding a token as a substring that are cut into words, at most
NFKC_SNIPPET_PIECE = 256  # characters normalised per call (at most 18 times as many come out)
# Context either side of a block, so that a word starting in the block is seen whole (its
# first MAX_WORD_CHARS characters are what is matched) and with what comes before it.
_MARGIN = MAX_WORD_CHARS

Part = tuple[str, bool]


def match_spans(text: str, tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The display form of `text` and the spans of it (start, end) that `tokens` match,
    merged and in order. Python work per character of `text`: callers pass a bounded slice."""
    wanted = set(tokens)
    folded = fold(text)
    spans: list[tuple[int, int]] = []
    for run in runs(folded.folded):
        if run.kind == "cjk":
            chars, at = run.text, run.positions
            for i, ch in enumerate(chars):
                if ch in wanted:
                    spans.append((at[i], at[i] + 1))
                if i + 1 < len(chars) and chars[i : i + 2] in wanted:
                    spans.append((at[i], at[i + 1] + 1))
        elif run.text[:MAX_WORD_CHARS] in wanted:
            spans.append((run.start, run.end))
    shown: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        # Folded indexes back to display indexes (case folding may lengthen a character).
        a, b = folded.origin[start], folded.origin[end - 1] + 1
        if shown and a <= shown[-1][1]:
            shown[-1] = (shown[-1][0], max(shown[-1][1], b))
        else:
            shown.append((a, b))
    return folded.display, shown


def snippet(text: str, tokens: Sequence[str]) -> list[Part]:
    """Up to `SNIPPET_CHARS` of the message around its first match of `tokens` (a query's,
    `query_tokens`), as parts; an ellipsis part marks text cut at either end (also past what
    was looked through)."""
    display, beyond = searched_text(text)
    first = first_match(display, tokens)
    start = max(0, (first or 0) - LEAD_CHARS)
    end = min(len(display), start + SNIPPET_CHARS)
    start = max(0, min(start, end - SNIPPET_CHARS))
    spans: list[tuple[int, int]] = []
    if first is not None:
        # No match starts before the first: cut from it to one word past the snippet's end.
        tail = display[first : min(len(display), end + _MARGIN)]
        spans = [(a + first, b + first) for a, b in match_spans(tail, tokens)[1]]
    parts: list[Part] = []
    at = start
    for a, b in spans:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        if a > at:
            parts.append((display[at:a], False))
        parts.append((display[a:b], True))
        at = b
    if at < end:
        parts.append((display[at:end], False))
    if start > 0:
        parts.insert(0, (ELLIPSIS, False))
    if end < len(display) or beyond:
        parts.append((ELLIPSIS, False))
    return parts


def searched_text(text: str) -> tuple[str, bool]:
    """The normalised text a snippet looks through, and whether the text goes on past it: a
    text that is its own NFKC form (a check in C) up to `MAX_SEARCH_CHARS`, any other up to
    `SCAN_NORMALISED_CHARS` of its NFKC form."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text[:MAX_SEARCH_CHARS], len(text) > MAX_SEARCH_CHARS
    return normalise(text, SCAN_NORMALISED_CHARS, NFKC_SNIPPET_PIECE)


def first_match(display: str, tokens: Sequence[str]) -> int | None:
    """Where in `display` (normalised) the first match of `tokens` starts, or None if there
    is none, or none in the first `MAX_CUT_BLOCKS` blocks that hold a token as a substring."""
    cut = 0
    for at in range(0, len(display), BLOCK_CHARS):
        low = max(0, at - _MARGIN)
        window = display[low : at + BLOCK_CHARS + _MARGIN]
        folded = case_fold(window)
        if not any(token in folded for token in tokens):
            continue
        if cut == MAX_CUT_BLOCKS:
            return None
        cut += 1
        for a, _ in match_spans(window, tokens)[1]:
            # A match starting in the block proper: one starting in the margin before it
            # belongs to the block before (and, at the margin's start, may be a word's tail).
            if at <= low + a < at + BLOCK_CHARS:
                return low + a
    return None
