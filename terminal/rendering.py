"""Text from users and the server, made safe to print on a terminal.

Anything a message, a name, an emoji, a snippet or an error message holds reaches the terminal
through `visible`: characters that a terminal would obey rather than show, or that disguise
what a line says, are written as `<U+XXXX>` (the code point in hex, at least four digits):

- C0 controls U+0000-U+001F (ESC, BEL, CR, BS ...), except tab and, in multi-line text, the
  line feed; in one-line text (names, titles, list lines) a line feed shows as `<U+000A>` too;
- DEL U+007F and the C1 controls U+0080-U+009F (U+009B is CSI, U+009D is OSC);
- format characters (Unicode category Cf): the bidirectional embeddings, overrides and isolates
  U+202A-U+202E and U+2066-U+2069, the marks U+200E, U+200F and U+061C, zero-width spaces,
  U+FEFF, soft hyphens, tag characters; but not the zero-width joiner and non-joiner (U+200D,
  U+200C), which emoji sequences and several scripts need, and which a terminal shows as
  nothing worse than a join;
- the line and paragraph separators U+2028 and U+2029, and unpaired surrogates (which could
  not even be encoded for the terminal).

Printable text (`str.isprintable`, plus the tab and line feeds where allowed) comes out as it
went in, and so does text `visible` made already: its escapes are printable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from parley_client import ApiError, SessionError

ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
"""Unicode categories shown as escapes (with the exceptions below)."""
KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
"""Format characters kept as they are: zero-width non-joiner and joiner."""


def escape(char: str) -> str:
    """`<U+001B>`: how one character that is not shown as itself is written."""
    return f"<U+{ord(char):04X}>"


def visible(text: str, multiline: bool = False) -> str:
    """`text` with every character a terminal would act on, or that hides or reorders what
    is shown, written as `<U+XXXX>`; line feeds kept only if `multiline`."""
    if text.isprintable():  # the common case, at C speed
        return text
    kept = ("\t", "\n") if multiline else ("\t",)
    out: list[str] = []
    for char in text:
        if (
            char.isprintable()
            or char in kept
            or char in KEPT_FORMAT
            or unicodedata.category(char) not in ESCAPED_CATEGORIES
        ):
            out.append(char)
        else:
            out.append(escape(char))
    return "".join(out)


def json_line(value: object) -> str:
    """`value` as one line of JSON that is safe on a terminal and decodes to exactly `value`:
    orjson escapes C0 controls itself; C1 controls, format characters and line separators are
    written as `\\uXXXX` escapes too (they can stand only inside JSON strings, where an
    escape means the same character)."""
    line = orjson.dumps(value).decode()
    if line.isprintable():
        return line
    return "".join(_json_escape(c) if _hidden(c) else c for c in line)


def _hidden(char: str) -> bool:
    return not char.isprintable() and char not in KEPT_FORMAT


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON writes a code point beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def one_line(text: str) -> str:
    """A text of several lines (a message's preview, a snippet) on one line: each line feed a
    space, then `visible`."""
    return visible(text.replace("\n", " "))


@contextmanager
def rendered_errors() -> Iterator[None]:
    """Around a command: the server's words in the errors it raises (an ApiError's code and
    message, a SessionError's kind and detail), which the command line prints as they are, are
    made visible on one line first."""
    try:
        yield
    except ApiError as exc:
        raise ApiError(
            exc.method,
            exc.path,
            exc.status,
            None if exc.code is None else visible(exc.code),
            visible(exc.message),
            exc.retry_after_s,
        ) from None
    except SessionError as exc:
        raise SessionError(
            visible(exc.kind),
            visible(exc.detail),
            exc.close_code,
            None if exc.close_reason is None else visible(exc.close_reason),
        ) from None
