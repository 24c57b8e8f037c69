"""Search tokens: what a message is indexed under and what a query looks for, in every script.

Text is normalised with NFKC (full-width forms, compatibility characters and composed Hangul
become one form) and case-folded, then cut into runs:

- **Scripts written without spaces** (Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer,
  Myanmar): every character is a token (a unigram) and so is every pair of neighbours (a
  bigram). A query's run of two or more characters looks for its bigrams, all of them; a run of
  one looks for the character. So a 2-character Korean word is found inside a longer one
  (`한국` in `한국어를`), and Japanese needs no dictionary.
- **Other letters and digits**: words, split at anything else, up to `MAX_WORD_CHARS`.
- **Symbols** (emoji among them): each is a token; variation selectors, skin tones and
  zero-width joiners are dropped, so `👍🏽` is found by `👍`.

Everything else (spaces, punctuation, controls) separates tokens and is not searchable.
The same rules cut what is indexed and what is asked, so a query finds exactly the messages
holding all of its tokens. Bigrams do not check that the query's pairs are adjacent in the
message: a rare extra match, never a missed one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

MAX_WORD_CHARS = 40  # longer words are indexed and asked by their first 40 characters
MAX_INDEX_TOKENS = (
    20_000  # distinct tokens kept per message (a 100,000-character text's tail may go unindexed)
)
MAX_QUERY_TOKENS = 32  # distinct tokens a query may ask for (all must match)

RunKind = Literal["word", "cjk", "symbol"]

# Scripts without spaces between words: cut into unigrams and bigrams.
_CJK_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


def _ignored(cp: int) -> bool:
    """Characters that only dress the one before them: variation selectors, zero-width
    joiners, emoji skin tones and tags."""
    return (
        0xFE00 <= cp <= 0xFE0F
        or cp in (0x200C, 0x200D)
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0000 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    )


def _kind(ch: str) -> RunKind | Literal["mark", "ignored", "space"]:
    cp = ord(ch)
    if _ignored(cp):
        return "ignored"
    for low, high in _CJK_RANGES:
        if low <= cp <= high:
            return "cjk"
    if ch.isalnum():
        return "word"
    category = unicodedata.category(ch)
    if category[0] == "M":
        return "mark"  # a combining mark: part of the run it follows
    if category == "So":
        return "symbol"
    return "space"


@dataclass(frozen=True)
class Folded:
    """A text as search sees it: `display` is its NFKC form (what snippets show), `folded`
    that form case-folded, and `origin[i]` the index in `display` of `folded[i]`."""

    display: str
    folded: str
    origin: list[int]


def fold(text: str) -> Folded:
    """Normalise (NFKC) and case-fold a text, keeping where each folded character came from."""
    display = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(display):
        # Turkish dotted capital I folds to "i" and a combining dot: searched as a plain "i".
        lowered = "i" if ch == "İ" else ch.casefold()
        out.append(lowered)
        origin.extend([i] * len(lowered))
    return Folded(display, "".join(out), origin)


@dataclass(frozen=True)
class Run:
    kind: RunKind
    start: int  # in the folded text
    end: int
    text: str  # the run's searchable characters (ignored ones left out)
    positions: list[int]  # the folded index of each character of `text`


def runs(folded: str) -> Iterator[Run]:
    """The runs of words, space-less script and symbols of a folded text, in order."""
    kind: RunKind | None = None
    chars: list[str] = []
    positions: list[int] = []
    start = 0
    for i, ch in enumerate(folded):
        k = _kind(ch)
        if k == "ignored":
            continue
        if kind is not None and kind != "symbol" and (k == kind or k == "mark"):
            # The run goes on (a combining mark belongs to the run it follows).
            chars.append(ch)
            positions.append(i)
            continue
        if kind is not None:
            yield Run(kind, start, positions[-1] + 1, "".join(chars), positions)
            kind, chars, positions = None, [], []
        if k == "word" or k == "cjk" or k == "symbol":
            kind, start = k, i
            chars, positions = [ch], [i]
    if kind is not None:
        yield Run(kind, start, positions[-1] + 1, "".join(chars), positions)


def index_tokens(text: str) -> list[str]:
    """The distinct tokens a message is indexed under (at most `MAX_INDEX_TOKENS`)."""
    seen: dict[str, None] = {}
    for run in runs(fold(text).folded):
        if run.kind == "cjk":
            chars = run.text
            for i, ch in enumerate(chars):
                seen[ch] = None
                if i + 1 < len(chars):
                    seen[chars[i : i + 2]] = None
        else:
            seen[run.text[:MAX_WORD_CHARS]] = None
        if len(seen) >= MAX_INDEX_TOKENS:
            break
    return list(seen)[:MAX_INDEX_TOKENS]


def query_tokens(query: str) -> list[str]:
    """The distinct tokens a query asks for, all of which a message must hold (at most
    `MAX_QUERY_TOKENS`: the rest of a long query is ignored)."""
    seen: dict[str, None] = {}
    for run in runs(fold(query).folded):
        if run.kind == "cjk" and len(run.text) > 1:
            for i in range(len(run.text) - 1):
                seen[run.text[i : i + 2]] = None
        else:
            seen[run.text[:MAX_WORD_CHARS]] = None
    return list(seen)[:MAX_QUERY_TOKENS]
