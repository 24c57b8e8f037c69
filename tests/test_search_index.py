"""The SearchIndex contract: one suite, run against every backend (today the embedded one,
Postgres). It runs in a database of its own, which it may empty (`clear`).

Also the tokens and snippets every backend shares (storage/search/)."""

from __future__ import annotations

import string
import sys
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Literal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from schemas.ids import id_floor, iso_ms, now_ms
from schemas.limits import MAX_SEARCH_QUERY_CHARS
from schemas.message import Message
from schemas.settings import Settings
from storage.postgres import search as postgres_search
from storage.postgres.pool import open_pool
from storage.postgres.search import PostgresSearchIndex
from storage.protocols import SearchIndex, SearchScope, SearchTooCostly
from storage.search import snippets as search_snippets
from storage.search import tokeniser
from storage.search import tokens as search_tokens
from storage.search.snippets import (
    BLOCK_CHARS,
    MAX_CUT_BLOCKS,
    NFKC_SNIPPET_PIECE,
    SCAN_NORMALISED_CHARS,
    SNIPPET_CHARS,
    snippet,
)
from storage.search.tokens import (
    MAX_SEARCH_CHARS,
    MAX_WORD_CHARS,
    NFKC_PIECE,
    index_tokens,
    normalise,
    query_tokens,
)
from tests.conftest import migrated_database

TOP = 2**63 - 1


@pytest.fixture(scope="session")
def search_dsn(postgres_dsn: str) -> str:
    """A migrated database of the suite's own (the shared stack's index must not be emptied)."""
    return migrated_database(postgres_dsn, "search")


@pytest.fixture(params=["postgres", "postgres-by-tokens", "postgres-by-channel"])
async def index(request: pytest.FixtureRequest, search_dsn: str) -> AsyncIterator[SearchIndex]:
    """Postgres as it runs, and with each of its two query plans fixed."""
    plans: dict[str, Literal["auto", "tokens", "channels"]] = {
        "postgres": "auto",
        "postgres-by-tokens": "tokens",
        "postgres-by-channel": "channels",
    }
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        yield PostgresSearchIndex(pool, plan=plans[request.param])
    finally:
        await pool.close()


def fresh() -> str:
    return str(uuid.uuid4().int >> 65)


_BASE = id_floor(now_ms())


def message(channel_id: str, n: int, text: str) -> Message:
    message_id = _BASE + n
    return Message(
        channel_id=channel_id,
        message_id=message_id,
        sender_id="7",
        sender_device_id="8",
        client_msg_id=f"c{channel_id}-{n}",
        text=text,
        sent_at=iso_ms(now_ms()),
    )


def everywhere(*channels: str) -> list[SearchScope]:
    return [SearchScope(c, 0) for c in channels]


async def texts(
    index: SearchIndex, q: str, scopes: list[SearchScope], limit: int = 100
) -> list[str]:
    page = await index.search(q, scopes, before=None, limit=limit)
    return [m.text for m in page.messages]


MIXED = [
    "오늘 한국어 공부를 했어요",
    "東京タワーに行きました",
    "我爱北京天安门",
    "party tonight 🎉🎉",
    "Meeting at 東京 station, 8pm 👍🏽",
    "\uff26\uff35\uff2c\uff2c width \uff2c\uff45\uff54\uff54\uff45\uff52\uff53",  # full-width
    "Straße and CAFÉ",
]


async def test_every_script_is_found_korean_japanese_chinese_emoji_and_mixed(
    index: SearchIndex,
) -> None:
    channel = fresh()
    await index.add([message(channel, i, t) for i, t in enumerate(MIXED)])
    scope = everywhere(channel)
    assert await texts(index, "한국", scope) == [
        MIXED[0]
    ]  # a 2-character word, inside a longer one
    assert await texts(index, "한국어 공부", scope) == [MIXED[0]]
    assert await texts(index, "タワー", scope) == [MIXED[1]]
    assert await texts(index, "北京", scope) == [MIXED[2]]
    assert await texts(index, "🎉", scope) == [MIXED[3]]
    assert await texts(index, "👍", scope) == [MIXED[4]]  # the skin tone is dropped
    assert await texts(index, "東京", scope) == [MIXED[4], MIXED[1]]  # newest first
    assert await texts(index, "東京 station", scope) == [MIXED[4]]  # every token must match
    assert await texts(index, "full letters", scope) == [MIXED[5]]  # NFKC, case-folded
    assert await texts(index, "strasse café", scope) == [MIXED[6]]
    assert await texts(index, "PARTY", scope) == [MIXED[3]]
    assert await texts(index, "nothing", scope) == []
    assert await texts(index, "!!", scope) == []  # no token: nothing to search for


async def test_a_senders_messages_are_paged_by_channel_then_id_without_removed_ones(
    index: SearchIndex,
) -> None:
    sender = fresh()
    low, high = sorted([fresh(), fresh()])
    theirs = [
        message(c, n, f"spam {n}").model_copy(update={"sender_id": sender})
        for c, n in ((high, 1), (low, 2), (low, 3), (high, 4))
    ]
    await index.add([*theirs, message(low, 5, "someone else's")])
    await index.remove(low, _BASE + 3)
    assert await index.sent_by(sender, after=None, limit=10) == [
        (low, _BASE + 2),
        (high, _BASE + 1),
        (high, _BASE + 4),
    ]
    first = await index.sent_by(sender, after=None, limit=2)
    assert first == [(low, _BASE + 2), (high, _BASE + 1)]
    assert await index.sent_by(sender, after=first[-1], limit=2) == [(high, _BASE + 4)]
    assert await index.sent_by(sender, after=(high, _BASE + 4), limit=2) == []
    assert await index.sent_by(fresh(), after=None, limit=2) == []


@given(st.lists(st.integers(min_value=1, max_value=50), max_size=30), st.integers(1, 60))
def test_a_batch_is_added_in_parts_of_bounded_text_in_order(lengths: list[int], chars: int) -> None:
    """`add` puts at most `chars` characters of text in one statement (a longer message alone):
    psycopg turns a statement's arrays into text on the event loop, all at once."""
    messages = [message("1", i, "x" * n) for i, n in enumerate(lengths)]
    parts = postgres_search._parts(messages, chars)
    assert [m for part in parts for m in part] == messages
    for part in parts:
        assert part
        assert len(part) == 1 or sum(len(m.text) for m in part) <= chars


async def test_a_batch_of_long_texts_is_indexed_whole_across_statements(
    index: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_search, "ADD_STATEMENT_CHARS", 40)
    channel = fresh()
    batch = [message(channel, i, f"parted {i} " + "filler " * (i % 7)) for i in range(12)]
    await index.add(batch)
    assert sorted(await texts(index, "parted", everywhere(channel))) == sorted(
        m.text for m in batch
    )


async def test_indexing_the_same_message_again_keeps_one_entry(index: SearchIndex) -> None:
    channel = fresh()
    first = message(channel, 1, "once only please")
    await index.add([first, first])
    await index.add([first, message(channel, 2, "once more")])
    assert await texts(index, "once", everywhere(channel)) == ["once more", "once only please"]


async def test_an_edit_replaces_the_text_and_a_removal_stays_removed(index: SearchIndex) -> None:
    channel = fresh()
    kept, gone = message(channel, 1, "apple pie"), message(channel, 2, "apple tart")
    await index.add([kept, gone])
    await index.edit(channel, kept.message_id, "banana bread")
    await index.remove(channel, gone.message_id)
    await index.remove(channel, gone.message_id)  # idempotent
    await index.edit(channel, gone.message_id, "apple again")  # a removed one stays removed
    assert await texts(index, "apple", everywhere(channel)) == []
    assert await texts(index, "banana", everywhere(channel)) == ["banana bread"]


async def test_a_removed_message_indexed_again_stays_removed_even_after_a_clear(
    search_dsn: str,
) -> None:
    # A rebuild that read a message from the log before its delete reached the index must not
    # bring it back, whether the live indexer's removal came before the rebuild's emptying or
    # after it.
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        index = PostgresSearchIndex(pool)
        channel = fresh()
        gone, kept = message(channel, 1, "deleted words"), message(channel, 2, "kept words")
        await index.add([gone, kept])
        await index.remove(channel, gone.message_id)
        await index.add([gone, kept])
        assert await texts(index, "words", everywhere(channel)) == ["kept words"]
        await index.clear()
        await index.add([gone, kept])
        assert await texts(index, "words", everywhere(channel)) == ["kept words"]
    finally:
        await pool.close()


async def test_results_are_newest_first_across_channels_and_page_with_before(
    index: SearchIndex,
) -> None:
    a, b = fresh(), fresh()
    await index.add([message(a if i % 2 else b, i, f"needle {i}") for i in range(25)])
    await index.add([message(a, 100, "haystack")])
    scope = everywhere(a, b)
    got: list[Message] = []
    before: int | None = None
    while True:
        page = await index.search("needle", scope, before=before, limit=7)
        got += page.messages
        if not page.more:
            break
        before = page.messages[-1].message_id
    assert [m.text for m in got] == [f"needle {i}" for i in reversed(range(25))]
    assert len({(m.channel_id, m.message_id) for m in got}) == 25


async def test_a_page_never_ends_between_two_matches_with_the_same_id(index: SearchIndex) -> None:
    channels = [fresh() for _ in range(3)]
    # The same id in three channels (ids are per channel), and an older one.
    await index.add([message(c, 50, f"twin in {i}") for i, c in enumerate(channels)])
    await index.add([message(channels[0], 10, "twin older")])
    scope = everywhere(*channels)
    # Three matches share the newest id: a page of 2 takes all three, not two of them.
    first = await index.search("twin", scope, before=None, limit=2)
    assert sorted(m.text for m in first.messages) == ["twin in 0", "twin in 1", "twin in 2"]
    assert first.more
    # A page of 3 that would end inside the tie ends before it.
    await index.add([message(channels[1], 60, "twin newest")])
    cut = await index.search("twin", scope, before=None, limit=3)
    assert [m.text for m in cut.messages] == ["twin newest"] and cut.more
    seen = list(cut.messages)
    before = cut.messages[-1].message_id
    while True:
        page = await index.search("twin", scope, before=before, limit=3)
        seen += page.messages
        if not page.more:
            break
        before = page.messages[-1].message_id
    assert sorted(m.text for m in seen) == sorted(
        ["twin newest", "twin in 0", "twin in 1", "twin in 2", "twin older"]
    )


async def test_only_the_scopes_channels_from_their_first_id_are_searched(
    index: SearchIndex,
) -> None:
    mine, late, other = fresh(), fresh(), fresh()
    await index.add([message(c, i, f"secret {i}") for c in (mine, late, other) for i in range(4)])
    scopes = [SearchScope(mine, 0), SearchScope(late, _BASE + 2)]
    page = await index.search("secret", scopes, before=None, limit=100)
    assert sorted((m.channel_id == late, m.text) for m in page.messages) == sorted(
        [(False, f"secret {i}") for i in range(4)] + [(True, "secret 2"), (True, "secret 3")]
    )
    assert await texts(index, "secret", []) == []
    only = await index.search("secret", [SearchScope(other, 0)], before=_BASE + 3, limit=100)
    assert [m.text for m in only.messages] == ["secret 2", "secret 1", "secret 0"]


async def test_a_message_comes_back_whole(index: SearchIndex) -> None:
    channel = fresh()
    original = message(channel, 3, "whole message 🙂")
    await index.add([original])
    page = await index.search("whole", everywhere(channel), before=None, limit=1)
    assert page.messages == [original] and not page.more


async def test_a_frequent_word_is_answered_from_the_statistics_the_same_way(
    search_dsn: str,
) -> None:
    """With statistics, a word in most messages is read channel by channel, a rare one by its
    tokens; both give what either plan alone gives."""
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        channels = [fresh() for _ in range(5)]
        await PostgresSearchIndex(pool).add(
            [
                message(c, 1000 + i, f"frequent {'scarce' if i == 7 else 'filler'} {i}")
                for c in channels
                for i in range(400)
            ]
        )
        async with pool.connection() as conn:
            await conn.execute("ANALYZE search_entries")
        scope = everywhere(*channels)
        for q in ("frequent", "scarce", "frequent scarce", "filler 7"):
            answers = [
                await PostgresSearchIndex(pool, plan=plan).search(q, scope, before=None, limit=30)
                for plan in ("auto", "tokens", "channels")
            ]
            assert answers[0] == answers[1] == answers[2], q
        auto = PostgresSearchIndex(pool)
        assert await auto._dense(["frequent"], 5, 31, time.monotonic() + 60)
        assert not await auto._dense(["scarce"], 5, 31, time.monotonic() + 60)
    finally:
        await pool.close()


async def test_clear_empties_the_index(search_dsn: str) -> None:
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        index = PostgresSearchIndex(pool)
        channel = fresh()
        await index.add([message(channel, 1, "to be forgotten")])
        await index.clear()
        assert await texts(index, "forgotten", everywhere(channel)) == []
    finally:
        await pool.close()


async def test_a_query_past_its_time_is_refused_as_too_costly(search_dsn: str) -> None:
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        index = PostgresSearchIndex(pool, timeout_ms=1)
        channel = fresh()
        await index.add([message(channel, i, f"common word {i}") for i in range(3000)])
        with pytest.raises(SearchTooCostly):
            for _ in range(20):  # a 1 ms budget: some query runs out of it
                await index.search("common word", everywhere(channel), before=None, limit=100)
    finally:
        await pool.close()


async def test_long_texts_are_tokenised_off_the_event_loop(
    search_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexer shares its loop with delivery: `add` and `edit` cut a long text in the
    tokenising process (storage/search/tokeniser.py), a short one at once, and the entries
    are the same."""
    cut_here: list[str] = []

    def recorded(text: str, *, fast: bool = True) -> list[str]:
        cut_here.append(text)
        return index_tokens(text, fast=fast)

    monkeypatch.setattr(tokeniser, "index_tokens", recorded)  # in this process only
    pool = await open_pool(Settings(postgres_dsn=search_dsn))
    try:
        index = PostgresSearchIndex(pool)
        channel = fresh()
        await index.add([message(channel, 1, "short text")])
        await index.add([message(channel, 2, HUGE), message(channel, 3, "beside a long one")])
        await index.edit(channel, _BASE + 1, "short edit")
        assert cut_here == ["short text", "short edit"]
        assert await texts(index, "short", everywhere(channel)) == ["short edit"]
        assert await texts(index, "beside", everywhere(channel)) == ["beside a long one"]
        assert await texts(index, "الله", everywhere(channel)) == [HUGE]
    finally:
        await pool.close()


# --- tokens and snippets (storage/search/) ------------------------------------------------------


def test_tokens_of_each_script() -> None:
    assert index_tokens("Hello, WORLD! hello") == ["hello", "world"]
    assert index_tokens("한국어") == ["한", "한국", "국", "국어", "어"]
    assert query_tokens("한국어") == ["한국", "국어"]
    assert query_tokens("한") == ["한"]
    assert query_tokens("👍🏽🎉") == ["👍", "🎉"]
    assert query_tokens("\uff21\uff22\uff23 straße") == ["abc", "strasse"]
    assert query_tokens("!!! ... ?") == []
    assert query_tokens("e\u0301cole") == query_tokens("école")  # NFKC composes
    assert len(query_tokens(" ".join(f"w{i}" for i in range(100)))) == 32


def test_snippets_are_plain_text_parts_with_the_matches_marked() -> None:
    assert snippet("Let's PARTY tonight 🎉", query_tokens("party 🎉")) == [
        ("Let's ", False),
        ("PARTY", True),
        (" tonight ", False),
        ("🎉", True),
    ]
    assert snippet("오늘 한국어 공부", query_tokens("한국")) == [
        ("오늘 ", False),
        ("한국", True),
        ("어 공부", False),
    ]
    # Markup in a message stays text: the parts carry it as characters, never as tags.
    assert snippet("<b>bold</b> & co", query_tokens("bold")) == [
        ("<b>", False),
        ("bold", True),
        ("</b> & co", False),
    ]
    long = "x" * 300 + " needle " + "y" * 300
    parts = snippet(long, query_tokens("needle"))
    assert parts[0] == ("…", False) and parts[-1] == ("…", False)
    assert ("needle", True) in parts
    assert sum(len(t) for t, _ in parts[1:-1]) == 160


def test_a_snippet_of_a_100000_character_message_shows_its_match_near_the_end() -> None:
    text = "filler " * 14_000 + "the NEEDLE at last " + "한국어" * 100
    parts = snippet(text, query_tokens("needle 한국"))
    assert ("NEEDLE", True) in parts and ("한국", True) in parts
    assert parts[0] == ("…", False) and parts[-1] == ("…", False)
    assert sum(len(t) for t, _ in parts[1:-1]) == 160


# --- the bound on what search reads, and the ASCII fast path -----------------------------------

# U+FDFA: one character, 18 after NFKC ("صلى الله عليه وسلم"); 100,000 of them, 1.8M.
HUGE = "\ufdfa" * 100_000


def test_search_reads_at_most_its_bound_of_a_text_that_grows_under_nfkc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens, query tokens and snippets of a text 18 times longer normalised: NFKC is asked
    for pieces and stops at the bound, and no more than the bound is cut into runs."""
    normalised: list[int] = []
    cut: list[int] = []
    nfkc, runs = unicodedata.normalize, search_tokens.runs

    def counted_normalize(form: str, text: str) -> str:
        out = nfkc(form, text)
        normalised.append(len(out))
        return out

    def counted_runs(folded: str) -> search_tokens.Iterator[search_tokens.Run]:
        cut.append(len(folded))
        return runs(folded)

    monkeypatch.setattr(unicodedata, "normalize", counted_normalize)
    monkeypatch.setattr(search_tokens, "runs", counted_runs)
    for work in (
        lambda: index_tokens(HUGE),
        lambda: query_tokens(HUGE),
        lambda: snippet(HUGE, query_tokens("الله")),
    ):
        normalised.clear(), cut.clear()
        work()
        assert sum(normalised) <= MAX_SEARCH_CHARS + 18 * NFKC_PIECE
        assert max(normalised) <= 18 * NFKC_PIECE * 2
        assert max(cut, default=0) <= MAX_SEARCH_CHARS


def test_a_word_past_the_bound_is_not_indexed_and_one_within_it_is() -> None:
    # 100,000 / 18 leaves the last copy cut after "صلى الله ع": its last word is past the bound.
    assert index_tokens(HUGE) == ["صلى", "الله", "عليه", "وسلمصلى", "ع"]
    assert "وسلم" not in index_tokens(HUGE)
    assert normalise(HUGE) == (unicodedata.normalize("NFKC", HUGE)[:MAX_SEARCH_CHARS], True)
    late = "\ufdfa" * 99_990 + " zanzibar"
    assert "zanzibar" not in index_tokens(late)
    assert "zanzibar" in index_tokens("zanzibar " + "\ufdfa" * 99_990)
    # A text NFKC does not lengthen is read whole, up to the longest message.
    assert index_tokens("x " * 49_998 + "end")[-1] == "end"
    parts = snippet(HUGE, query_tokens("الله"))
    assert ("الله", True) in parts and parts[-1] == ("…", False)


# --- the bound on what a snippet and a query cost ----------------------------------------------


class _Counted:
    """Characters normalised (NFKC's output) and cut into words in Python (`fold`, which feeds
    `runs`) while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.normalised = 0
        self.cut = 0
        nfkc, fold = unicodedata.normalize, search_snippets.fold

        def normalize(form: str, text: str) -> str:
            out = nfkc(form, text)
            self.normalised += len(out)
            return out

        def counted_fold(text: str) -> search_tokens.Folded:
            self.cut += len(text)
            return fold(text)

        monkeypatch.setattr(unicodedata, "normalize", normalize)
        monkeypatch.setattr(search_snippets, "fold", counted_fold)

    def take(self) -> tuple[int, int]:
        counts, self.normalised, self.cut = (self.normalised, self.cut), 0, 0
        return counts


# At most: the normalised characters a text NFKC changes is looked through for (one call's
# output past them), and the blocks cut into words plus the snippet's own characters.
_MOST_NORMALISED = SCAN_NORMALISED_CHARS + 18 * NFKC_SNIPPET_PIECE
_MOST_CUT = MAX_CUT_BLOCKS * (BLOCK_CHARS + 2 * MAX_WORD_CHARS) + SNIPPET_CHARS + MAX_WORD_CHARS


def test_a_snippet_costs_a_bounded_amount_whatever_the_text_and_its_growth_under_nfkc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per result: characters normalised and characters cut into words in Python are bounded
    by constants, not by the text's length or its NFKC form (100,000 x U+FDFA is 1.8M)."""
    counted = _Counted(monkeypatch)
    allah = query_tokens("الله")

    parts = snippet(HUGE, allah)
    assert parts[:3] == [("صلى ", False), ("الله", True), (" عليه وسلمصلى ", False)]
    assert parts[-1] == ("…", False) and sum(len(t) for t, _ in parts[:-1]) == SNIPPET_CHARS
    normalised, cut = counted.take()
    assert normalised <= _MOST_NORMALISED and cut <= _MOST_CUT

    # A first match within what is looked through, 18,001 normalised characters in.
    parts = snippet("\ufdfa" * 1_000 + " needle", query_tokens("needle"))
    assert parts[-1] == ("needle", True) and parts[0] == ("…", False)
    normalised, cut = counted.take()
    assert normalised <= _MOST_NORMALISED and cut <= _MOST_CUT
    # Past it (and past what search reads): the beginning, cut short, for the same bounded work.
    parts = snippet(HUGE + " zanzibar", query_tokens("zanzibar"))
    assert parts == [(unicodedata.normalize("NFKC", HUGE[:9])[:SNIPPET_CHARS], False), ("…", False)]
    normalised, cut = counted.take()
    assert normalised <= _MOST_NORMALISED and cut <= _MOST_CUT

    # A text NFKC leaves as it is is looked through to the bound, in C: its match at the end.
    parts = snippet("д " * 49_990 + "игла", query_tokens("игла"))
    assert parts[-1] == ("игла", True)
    one_block = BLOCK_CHARS + 2 * MAX_WORD_CHARS + SNIPPET_CHARS + MAX_WORD_CHARS
    assert max(counted.take()) <= one_block  # the match's block and the snippet, no more
    # A token inside every word, block after block: only so many blocks are cut.
    parts = snippet("aaaa " * 20_000 + "a", query_tokens("a"))
    assert parts == [(("aaaa " * 40)[:SNIPPET_CHARS], False), ("…", False)]
    assert counted.take()[1] <= _MOST_CUT


def test_a_query_is_read_to_its_bound_once_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 characters of U+FDFA are 3,600 normalised: a query's tokens come from the first
    200 of them, and no more is cut into words."""
    cut: list[int] = []
    runs = search_tokens.runs

    def counted_runs(folded: str) -> search_tokens.Iterator[search_tokens.Run]:
        cut.append(len(folded))
        return runs(folded)

    monkeypatch.setattr(search_tokens, "runs", counted_runs)
    assert query_tokens("\ufdfa" * 200) == ["صلى", "الله", "عليه", "وسلمصلى", "وسلمصل"]
    assert cut == [MAX_SEARCH_QUERY_CHARS]
    assert query_tokens("x" * 199 + " y") == ["x" * MAX_WORD_CHARS]  # past 200: not read


# The characters NFKC composes, reorders or expands: marks of several classes, Hangul jamo and
# syllables, half-width kana and their voicing marks, Indic vowel signs, U+FDFA, ligatures.
_TRICKY = (
    "e\u0301\u0323\u0308\u0345\u1100\u1161\u11a8\uac00\uff76\uff9e\uff9f\u0b47\u0b3e"
    "\u0b57\u0dd9\u0dcf\u0dca\u0f73\u0f71\u0f72\ufdfa\ufb01\u2460\u0130\u00df a\u3099"
)


@given(
    st.text(st.sampled_from(_TRICKY) | st.characters(), max_size=200),
    st.integers(1, 24),
    st.integers(0, 500),
)
def test_normalising_in_pieces_gives_the_prefix_of_the_whole_nfkc_form(
    text: str, piece: int, limit: int
) -> None:
    whole = unicodedata.normalize("NFKC", text)
    assert normalise(text, limit, piece) == (whole[:limit], len(whole) > limit)


_ASCII_WORDS = st.text(
    string.ascii_letters + string.digits, min_size=1, max_size=2 * MAX_WORD_CHARS
)
_ASCII_TEXT = st.lists(_ASCII_WORDS | st.text(st.characters(max_codepoint=127), max_size=4)).map(
    "".join
)


def _both_paths(tokens: Callable[..., list[str]], text: str) -> None:
    assert text.isascii()
    assert tokens(text) == tokens(text, fast=False)


@given(_ASCII_TEXT)
@example("Hello, WORLD! hello_there x" + "y" * 50 + "\t\x00CAFE~42|a^b`c$")
def test_an_ascii_text_is_cut_in_c_into_the_tokens_of_the_general_path(text: str) -> None:
    _both_paths(index_tokens, text)
    _both_paths(query_tokens, text)


def test_an_ascii_text_past_the_bound_and_the_token_caps_cuts_the_same_both_ways() -> None:
    long = " ".join(f"w{i}" for i in range(30_000))  # past MAX_SEARCH_CHARS and 20,000 tokens
    _both_paths(index_tokens, long)
    _both_paths(index_tokens, "z" * 60_000 + " " + "q" * 60_000)
    _both_paths(query_tokens, long)


def test_the_kinds_table_is_the_kind_of_every_code_point() -> None:
    # The fast cutter's classes are made from this table: it must say what `_kind` says.
    letters = {kind: letter for letter, kind in search_tokens._KIND_LETTERS.items()}
    table = search_tokens.kinds_table()
    assert len(table) == sys.maxunicode + 1
    wrong = [
        cp for cp, letter in enumerate(table) if letters[search_tokens._kind(chr(cp))] != letter
    ]
    assert wrong == []


# Letters and marks of several scripts, symbols and what dresses them, spaces and punctuation.
_UNICODE_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"])
    | st.sampled_from(
        "aZ9 ,.한국어漢字かなカナไทย\u0301\u0653\u093f\ufdfa👍🏽\u200d\ufe0f\U0001d400ß\u0130"
    )
)


@given(_UNICODE_TEXT)
@example(
    "x\u0301y 漢\u0301字 👍\u0301 \u0301a \ufe0fb\u200dc 👍🏽👍 ß\u0130 \U0001d400\U0001d401 e\u0653"
)
def test_any_text_is_cut_in_c_into_the_tokens_of_the_loop_over_its_characters(text: str) -> None:
    assert index_tokens(text) == index_tokens(text, fast=False)


def test_long_texts_of_every_kind_cut_the_same_both_ways() -> None:
    cjk = "".join(chr(0x4E00 + i % 20_000) for i in range(100_000))  # past MAX_INDEX_TOKENS
    for text in (HUGE, cjk, "Ünïcödé wörds x\u0301y 漢字かな 👍🏽 \U0001d400 " * 3_000):
        assert index_tokens(text) == index_tokens(text, fast=False)
