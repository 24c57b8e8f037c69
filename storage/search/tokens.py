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

**Bounded after normalisation.** Search reads at most the first `MAX_SEARCH_CHARS` characters
of a text's NFKC form (`normalise`): what is indexed, what a query asks and what a snippet
shows. NFKC may lengthen a text up to 18 times (U+FDFA becomes 18 characters), so a bound on
the original (a message's 100,000 characters) bounds nothing: 100,000 x U+FDFA is 1.8M
characters, seconds of Python per message. The text is normalised a piece at a time and the
rest is never looked at, so the work per text is O(`MAX_SEARCH_CHARS`) whatever it holds.

**Texts are cut in C.** An ASCII text (most messages) is its own NFKC form, its case
folding is `str.lower`, and its only tokens are runs of ASCII letters and digits (no ASCII
character is a symbol, a mark or in a space-less script): one regex gives exactly the tokens
of the general path (`fast=False`; a property test holds them equal), ~20 times faster. Any
other text is cut by one regex too (`_cutter`: character classes made once from this Python's
Unicode data), so indexing a 100,000-character text costs milliseconds instead of the ~150 ms a
loop over its characters took; `runs`, the loop, is kept where positions are needed (snippets)
and as the definition the fast path is held equal to.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from schemas.limits import MAX_SEARCH_QUERY_CHARS

# Normalised characters of a text that search reads; the rest is not searchable. The size of
# the longest message (schemas/limits.py MAX_TEXT_CHARS): a text that NFKC does not lengthen
# is searchable whole, however long, and one it lengthens costs at most what the longest plain
# message costs (~15 ms of C for 100,000 characters of a non-ASCII script, in the
# indexer's tokenising process: storage/search/tokeniser.py) instead of up to 18 times that.
MAX_SEARCH_CHARS = 100_000
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


# Characters of the original normalised per call: at most 18 times as many come out, so one
# call holds the GIL for ~1 ms at most (NFKC of 100,000 x U+FDFA at once: ~90 ms).
NFKC_PIECE = 1_024
# How far past a piece's end a place to cut it is looked for (see `_cut_before`); a run of
# combining marks longer than this (no text in any language) is cut inside.
_CUT_SEARCH = 256


def normalise(
    text: str, limit: int = MAX_SEARCH_CHARS, piece: int = NFKC_PIECE
) -> tuple[str, bool]:
    """The first `limit` characters of `text`'s NFKC form, and whether that form goes on past
    them. Normalises `piece` characters of `text` at a time, cut where NFKC cannot join what
    is on either side, and stops once `limit` characters came out: O(limit + 18 x piece)
    whatever the text."""
    if text.isascii():
        return text[:limit], len(text) > limit  # ASCII is its own NFKC form
    if len(text) <= piece:
        whole = unicodedata.normalize("NFKC", text)
        return whole[:limit], len(whole) > limit
    parts: list[str] = []
    size = at = 0
    while at < len(text) and size < limit:
        end = _cut_before(text, at + piece)
        part = unicodedata.normalize("NFKC", text[at:end])
        parts.append(part)
        size, at = size + len(part), end
    # NFKC never turns a character into nothing: text left over is more normalised text.
    return "".join(parts)[:limit], size > limit or at < len(text)


def _cut_before(text: str, at: int) -> int:
    """The first index from `at` on before which `text` may be cut without changing its NFKC
    form: a character whose decomposition starts with a starter that composes with nothing
    before it (so no reordering or composition crosses the cut). `len(text)` if none is near
    (the rest is short), `at` when a run of marks longer than `_CUT_SEARCH` leaves no such
    place (then the marks on either side are normalised apart)."""
    end = min(len(text), at + _CUT_SEARCH)
    for i in range(at, end):
        if _fresh_start(text[i]):
            return i
    return end if end == len(text) else at


def _fresh_start(ch: str) -> bool:
    if ch < "\u0300":  # Latin and controls: nothing below U+0300 joins what precedes it
        return True
    first = unicodedata.normalize("NFKD", ch)[0]
    return not unicodedata.combining(first) and first not in _joins_backward()


@functools.cache
def _joins_backward() -> frozenset[str]:
    """Starters that compose with the character before them: the second half of a canonical
    pair that is itself a starter (vowel signs of Indic scripts, Hangul medial vowels and final
    consonants). Computed from this Python's Unicode data once (~0.1 s), when a long non-ASCII
    text is first normalised."""
    found = {chr(cp) for cp in range(0x1161, 0x1176)}  # Hangul vowels join a leading consonant
    found |= {chr(cp) for cp in range(0x11A8, 0x11C3)}  # finals join a syllable
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            pair = decomposition.split()
            if len(pair) == 2 and not unicodedata.combining(second := chr(int(pair[1], 16))):
                found.add(second)
    return frozenset(found)


def case_fold(display: str) -> str:
    """`display` case-folded as `fold` does it, in C (str.casefold maps each character on its
    own, without context)."""
    return display.replace("İ", "i").casefold()


def fold(text: str) -> Folded:
    """Normalise (NFKC, the first `MAX_SEARCH_CHARS` characters) and case-fold a text, keeping
    where each folded character came from."""
    display = normalise(text)[0]
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(display):
        # Turkish dotted capital I folds to "i" and a combining dot: searched as a plain "i".
        lowered = "i" if ch == "İ" else ch.casefold()
        out.append(lowered)
        origin.extend([i] * len(lowered))
    return Folded(display, "".join(out), origin)


# Cutting runs gives the GIL back every 1,024 characters (~1.5 ms): tokenising runs in a thread
# beside an event loop (storage/postgres/search.py), and a thread that only computes keeps the
# GIL for a whole switch interval (5 ms) each time the loop wakes and asks for it; with this,
# the loop waits ~0.8 ms at the median instead of 5 ms (p99 6 ms, not 10), for ~15% more time.
_YIELD_MASK = 1_023  # i & _YIELD_MASK == _YIELD_MASK: once in 1,024 characters


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
        if i & _YIELD_MASK == _YIELD_MASK:
            time.sleep(0)  # lets a waiting thread have the GIL (see _YIELD_MASK)
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


# The first MAX_WORD_CHARS characters of each run of ASCII letters and digits.
_ASCII_WORD = re.compile(f"([a-z0-9]{{1,{MAX_WORD_CHARS}}})[a-z0-9]*")


def _ascii_words(text: str) -> list[str]:
    """The word tokens of an ASCII text, repeats included, as `runs` would cut them."""
    return _ASCII_WORD.findall(text[:MAX_SEARCH_CHARS].lower())


# The ranges of `_ignored`.
_IGNORED_RANGES: tuple[tuple[int, int], ...] = (
    (0xFE00, 0xFE0F),
    (0x200C, 0x200D),
    (0x1F3FB, 0x1F3FF),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
)
_KIND_LETTERS: dict[str, RunKind | Literal["mark", "ignored", "space"]] = {
    "c": "cjk",
    "w": "word",
    "s": "symbol",
    "m": "mark",
    "i": "ignored",
    " ": "space",
}


@functools.cache
def kinds_table() -> str:
    """`_kind` of every code point, a letter each (`_KIND_LETTERS`), made in C passes over
    this Python's Unicode data (~0.5 s, once): `[^\\W_]` is exactly `str.isalnum` (both are
    CPython's `Py_UNICODE_ISALNUM`), and marks and symbols are read from the categories."""
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    categories = "".join(map(unicodedata.category, every))  # two letters a code point
    table = bytearray(b" ") * len(every)
    for found in re.finditer("M[nce]|So", categories):  # capitals fall on even offsets only
        table[found.start() // 2] = ord("m" if found.group()[0] == "M" else "s")
    for found in re.finditer(r"[^\W_]+", every):
        table[found.start() : found.end()] = b"w" * (found.end() - found.start())
    for letter, ranges in (("c", _CJK_RANGES), ("i", _IGNORED_RANGES)):
        for low, high in ranges:
            table[low : high + 1] = letter.encode() * (high + 1 - low)
    return table.decode("ascii")


_ASTRAL = "(?=[\\U00010000-\\U0010ffff])"  # cheap: the classes' astral parts are range lists


def _any_of(letters: str) -> tuple[str, str]:
    """Regex classes of the code points of these kinds, the BMP's and the rest's: `re` makes a
    class of BMP characters a table lookup, but one holding an astral character a list of
    ranges tried in turn, so the two are kept apart."""
    bmp: list[str] = []
    astral: list[str] = []
    for run in re.finditer(f"[{letters}]+", kinds_table()):
        low, high = run.start(), run.end() - 1
        for start, end, into in ((low, min(high, 0xFFFF), bmp), (max(low, 0x10000), high, astral)):
            if start <= end:
                into.append(f"\\U{start:08x}-\\U{end:08x}")
    return "[" + "".join(bmp) + "]", "[" + "".join(astral) + "]"


def _one(letters: str) -> str:
    bmp, astral = _any_of(letters)
    return f"(?:{bmp}|{_ASTRAL}{astral})"


def _many(letters: str) -> str:
    bmp, astral = _any_of(letters)
    return f"(?:{bmp}+|{_ASTRAL}{astral})*"


@functools.cache
def _cutter() -> re.Pattern[str]:
    """One regex whose matches are the runs `runs` cuts from a text without its ignored
    characters, the run's text in group 1 (space-less script), 2 (word) or 3 (symbol)."""
    return re.compile(f"({_one('c')}{_many('cm')})|({_one('w')}{_many('wm')})|({_one('s')})")


def warm() -> None:
    """Make the kinds table and the cutting regex now (~0.5 s, once a process). Made lazily,
    they would be made by the first text beyond ASCII, in pure Python holding the GIL, so
    every socket of a gateway or every partition of a processor would stall that long: a
    process calls this as it starts, before it serves. Also the starters NFKC joins backward
    (~0.1 s), which the first long text beyond ASCII would otherwise look up."""
    _cutter()
    _joins_backward()


_IGNORED = re.compile(
    "[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _IGNORED_RANGES) + "]+"
)


def _run_texts(folded: str, fast: bool) -> Iterator[tuple[RunKind, str]]:
    """The kind and searchable text of each distinct run of `folded`, in the order `runs`
    cuts them; in C when `fast` (one `findall`, repeats dropped before any Python sees them)."""
    if not fast:
        yield from dict.fromkeys((run.kind, run.text) for run in runs(folded))
        return
    for cjk, word, symbol in dict.fromkeys(_cutter().findall(_IGNORED.sub("", folded))):
        yield ("cjk", cjk) if cjk else ("word", word) if word else ("symbol", symbol)


def index_tokens(text: str, *, fast: bool = True) -> list[str]:
    """The distinct tokens a message is indexed under (at most `MAX_INDEX_TOKENS`), from its
    first `MAX_SEARCH_CHARS` normalised characters. `fast=False` cuts every text with `runs`,
    the loop over its characters (to prove both agree)."""
    if fast and text.isascii():
        return list(dict.fromkeys(_ascii_words(text)))[:MAX_INDEX_TOKENS]
    seen: dict[str, None] = {}
    for kind, chars in _run_texts(case_fold(normalise(text)[0]), fast):
        if kind == "cjk":
            for i, ch in enumerate(chars):
                seen[ch] = None
                if i + 1 < len(chars):
                    seen[chars[i : i + 2]] = None
                if len(seen) >= MAX_INDEX_TOKENS:
                    break  # what comes after is cut off below anyway
        else:
            seen[chars[:MAX_WORD_CHARS]] = None
        if len(seen) >= MAX_INDEX_TOKENS:
            break
    return list(seen)[:MAX_INDEX_TOKENS]


def query_tokens(query: str, *, fast: bool = True) -> list[str]:
    """The distinct tokens a query asks for, all of which a message must hold (at most
    `MAX_QUERY_TOKENS`: the rest of a long query is ignored), from its first
    `MAX_SEARCH_QUERY_CHARS` normalised characters: a query's 200 characters may be 3,600 once
    normalised, and only so many are read. `fast=False` as for `index_tokens`."""
    if fast and query.isascii():
        words = _ASCII_WORD.findall(query[:MAX_SEARCH_QUERY_CHARS].lower())
        return list(dict.fromkeys(words))[:MAX_QUERY_TOKENS]
    seen: dict[str, None] = {}
    for run in runs(case_fold(normalise(query, MAX_SEARCH_QUERY_CHARS)[0])):
        if run.kind == "cjk" and len(run.text) > 1:
            for i in range(len(run.text) - 1):
                seen[run.text[i : i + 2]] = None
        else:
            seen[run.text[:MAX_WORD_CHARS]] = None
    return list(seen)[:MAX_QUERY_TOKENS]
