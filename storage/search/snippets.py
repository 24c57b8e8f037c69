"""Snippets: the part of a message around what a query matched, as plain-text parts.

A snippet is a list of parts, each `(text, match)`; `match` marks the characters the query
found. Clients render each part as text (bold for matches): no markup is ever inside, so no
client needs innerHTML, and no offsets need agreeing on (code points or UTF-16 units). The
text is the message's NFKC form (storage/search/tokens.py), which may differ from `text` in
compatibility characters (full-width letters show as ASCII).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.search.tokens import MAX_WORD_CHARS, fold, query_tokens, runs

SNIPPET_CHARS = 160  # characters of the message a snippet shows at most
LEAD_CHARS = 40  # of them, before the first match
ELLIPSIS = "…"

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
    marks text cut at either end."""
    display, spans = match_spans(text, query_tokens(query))
    first = spans[0][0] if spans else 0
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
    if end < len(display):
        parts.append((ELLIPSIS, False))
    return parts
