"""Long texts are tokenised, and a search answer's snippets made, in a process of its own
(storage/search/tokeniser.py): the same tokens and snippets as on the loop, a new process after
the last one died, none left behind by a killed parent."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from storage.search import tokeniser
from storage.search.tokens import query_tokens
from tests.conftest import eventually

SEP = "\x1f"
LONG = ["한국어를 배우는 사람들 " * 2_000, "\ufdfa" * 5_000, "plain words " * 10_000, "é" * 2_000]


def tokenising_pid() -> int | None:
    pool = tokeniser._pool
    if pool is None or not pool._processes:
        return None
    [pid] = pool._processes
    return pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_long_texts_are_cut_in_another_process_into_the_tokens_of_the_loop() -> None:
    assert not tokeniser._inline(LONG)
    assert await tokeniser.cut(LONG, SEP) == tokeniser.joined_tokens(LONG, SEP)
    pid = tokenising_pid()
    assert pid is not None and pid != os.getpid()
    # Below the caller's priority: on a busy machine the cores go to delivery first.
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    # A short batch is cut at once, on the loop: no process is asked.
    assert tokeniser._inline(["hello there", "안녕"])
    assert tokeniser._inline(["ascii " * 10_000])
    assert await tokeniser.cut(["hello there", "안녕"], SEP) == [
        f"hello{SEP}there",
        f"안{SEP}안녕{SEP}녕",
    ]


async def test_a_dead_tokenising_process_fails_its_batch_and_the_next_starts_another() -> None:
    await tokeniser.cut(LONG, SEP)
    first = tokenising_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool):
        await tokeniser.cut(LONG, SEP)
    assert await tokeniser.cut(LONG, SEP) == tokeniser.joined_tokens(LONG, SEP)
    second = tokenising_pid()
    assert second is not None and second != first


async def test_the_tokenising_process_exits_when_its_parent_is_killed() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from storage.search import tokeniser
        asyncio.run(tokeniser.cut(["\\ufdfa" * 5_000], "-"))
        [pid] = tokeniser._pool._processes
        print(pid, flush=True)
        sys.stdin.read()
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # the killed parent's semaphores, from their tracker
    )
    assert parent.stdout is not None
    child = int(await parent.stdout.readline())
    assert alive(child)
    parent.kill()
    await parent.wait()

    async def gone() -> bool:
        return not alive(child)

    await eventually(gone, 10, "the tokenising process to exit after its parent")


async def test_a_search_answers_snippets_are_made_in_the_process_as_on_the_loop() -> None:
    tokens = query_tokens("배우는 words ééé")
    far = time.monotonic() + 60
    made = await tokeniser.snip(LONG, tokens, far)
    assert made == tokeniser.snippets(LONG, tokens, far)
    assert tokenising_pid() not in (None, os.getpid())
    # Matches in the Korean and the plain text; U+FDFA and one 2,000-letter word hold none.
    assert [any(match for _, match in parts) for parts in made] == [True, False, True, False]
    # Short texts are cut on the loop, even with the process gone; long ones fail with it, and
    # the next answer's start a new one.
    os.kill(tokenising_pid() or 0, signal.SIGKILL)
    assert await tokeniser.snip(["a few words"], ["words"], far) == [
        [("a few ", False), ("words", True)]
    ]
    with pytest.raises(BrokenProcessPool):
        await tokeniser.snip(LONG, tokens, far)
    assert await tokeniser.snip(LONG, tokens, far) == made


async def test_snippets_past_their_deadline_are_given_up_in_the_process() -> None:
    with pytest.raises(TimeoutError):
        await tokeniser.snip(LONG, ["words"], time.monotonic() - 1)
