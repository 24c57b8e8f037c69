"""Snippets: the part of a message around what a query matched, as plain-text parts.

A snippet is a list of parts, each `(text, match)`; `match` marks the characters the query
found. Clients render each part as text (bold for matches): no markup is ever inside, so no
client needs innerHTML, and no offsets need agreeing on (code points or UTF-16 units). The
text is the message's NFKC form (storage/search/tokens.py), which may differ from `text` in
compatibility characters (full-width letters show as ASCII).

A snippet costs O(`MAX_SEARCH_CHARS`) whatever the text: it reads the text's first
`MAX_SEARCH_CHARS` normalised characters (what search reads, so a match shown is a match the
index holds), never the NFKC form of the whole (up to 18 times longer than the text).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.search.tokens import MAX_WORD_CHARS, fold, normalise, query_tokens, runs

SNIPPET_CHARS = 160  # characters of the message a snippet shows at most
LEAD_CHARS = 40  # of them, before the first match
ELLIPSIS = "…"
SCAN_CHARS = 2_000  # a longer text is scanned for matches only near its first one

Part = tuple[str, bool]


def match_spans(text: str, tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The display form of `text` and the spans of it (start, end) that `tokens` match,
    merged and in order."""
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


def snippet(text: str, query: str) -> list[Part]:
    """Up to `SNIPPET_CHARS` of the message around its first match, as parts; an ellipsis part
    marks text cut at either end (also past `MAX_SEARCH_CHARS`, where no match is looked for)."""
    tokens = query_tokens(query)
    display, beyond = normalise(text)
    offset, scanned = 0, display
    if len(display) > SCAN_CHARS:
        # A long text is scanned only near its first match, found by plain substring search
        # (in C): cutting 100,000 characters into runs takes ~150 ms in Python.
        offset, scanned = _near_first_match(display, tokens)
    # NFKC is idempotent, so the spans of the NFKC slice index `display` from `offset`.
    spans = [(a + offset, b + offset) for a, b in match_spans(scanned, tokens)[1]]
    first = spans[0][0] if spans else offset
    start = max(0, first - LEAD_CHARS)
    end = min(len(display), start + SNIPPET_CHARS)
    start = max(0, min(start, end - SNIPPET_CHARS))
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


def _near_first_match(display: str, tokens: Sequence[str]) -> tuple[int, str]:
    """(start, slice) of a long NFKC text around where a token first occurs, found by plain
    substring search of the case-folded text (so approximate: a token may first occur inside a
    longer word). The slice leaves room for whole words at both ends of the snippet."""
    folded = display.casefold()
    found = [at for at in (folded.find(t) for t in tokens) if at >= 0]
    # Folding may lengthen the text (ß -> ss): scale back to the display's positions.
    at = int(min(found, default=0) * len(display) / max(len(folded), 1))
    start = max(0, at - 2 * LEAD_CHARS - MAX_WORD_CHARS)
    end = min(len(display), at + 2 * SNIPPET_CHARS)
    return start, display[start:end]
