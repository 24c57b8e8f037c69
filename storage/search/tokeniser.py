"""The search's text work, done off the caller's event loop when the texts are long: the index
tokens of a batch of texts (the indexer) and the snippets of a search answer (the gateway).

The indexer shares the processor's event loop with message delivery. Cutting a long text beyond
ASCII is regex passes in C that hold the GIL for their whole text (~15 ms for 100,000 x U+FDFA,
bounded by `MAX_SEARCH_CHARS`), so a thread of the same process, however it yields, takes the
loop's GIL for whole milliseconds at a time and a flood of huge texts held delivery up by over
100 ms. Long texts are therefore cut in **a process of its own** (one per process that indexes,
made when the first long batch comes, its tables made as it starts): the loop only hands it the
texts and takes the tokens back. That process runs `NICENESS` below its parent's priority: a
flood of huge texts keeps it busy for seconds after the flood, and on a busy machine those
cores are better spent delivering. A batch of short texts (most: a chat message is a line, and
ASCII is cut ~20 times faster) is cut at once on the loop, where a round trip to the process
would cost more than the cutting (`INLINE_CHARS`).

A search answer's snippets (up to 100, each bounded work: storage/search/snippets.py, but
Python work of milliseconds in all) are made there too, for the same reason: in a thread beside
the gateway's loop they took the GIL from it whenever the loop made a system call, and a flood
of searches held other users' deliveries up by over 100 ms. Their deadline is the request's:
`time.monotonic` is the same clock in both processes.

The process exits with its parent (it watches for the parent's death), so a killed processor
leaves none behind. If it dies itself (killed, out of memory), the batch fails with
`BrokenProcessPool`, which the indexer retries like any store failure, and the next batch
starts a new one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from storage.search.snippets import Part, snippet
from storage.search.tokens import index_tokens, warm

# A batch whose texts hold at most this many characters (ASCII: `INLINE_ASCII_CHARS`) is cut on
# the caller's loop: at most ~2 ms however NFKC lengthens it (a character may become 18).
INLINE_CHARS = 1_024
INLINE_ASCII_CHARS = 64 * 1024
# How far below its parent's the tokenising process's scheduling priority is: on a busy
# machine the cores go to delivery first, and the search's work takes what is left.
NICENESS = 10
# How often the tokenising process looks whether its parent is still there.
PARENT_CHECK_S = 1.0

_pool: ProcessPoolExecutor | None = None

T = TypeVar("T")


def joined_tokens(texts: Sequence[str], sep: str) -> list[str]:
    """Each text's index tokens joined by `sep` (never in a token: they hold no controls)."""
    return [sep.join(index_tokens(text)) for text in texts]


async def cut(texts: Sequence[str], sep: str) -> list[str]:
    """`joined_tokens(texts, sep)`, in the tokenising process unless the texts are short."""
    if _inline(texts):
        return joined_tokens(texts, sep)
    return await _in_process(joined_tokens, list(texts), sep)


def snippets(texts: Sequence[str], tokens: Sequence[str], deadline: float) -> list[list[Part]]:
    """Each text's snippet for `tokens`; `TimeoutError` once `time.monotonic()` passes
    `deadline` (checked before each)."""
    out: list[list[Part]] = []
    for text in texts:
        if time.monotonic() > deadline:
            raise TimeoutError("out of time cutting snippets")
        out.append(snippet(text, tokens))
    return out


async def snip(texts: Sequence[str], tokens: Sequence[str], deadline: float) -> list[list[Part]]:
    """`snippets(texts, tokens, deadline)`, in the search's process unless the texts are short
    (`INLINE_CHARS` in all)."""
    if sum(len(text) for text in texts) <= INLINE_CHARS:
        return snippets(texts, tokens, deadline)
    return await _in_process(snippets, list(texts), list(tokens), deadline)


async def _in_process(work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in the search's process. If the process dies, `BrokenProcessPool`: the
    caller's batch or answer fails (the indexer retries it), and the next call starts another."""
    pool = _tokenising_process()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, work, *args)
    except BrokenProcessPool:
        _forget(pool)
        raise


def _inline(texts: Sequence[str]) -> bool:
    size = sum(len(text) for text in texts)
    if size <= INLINE_CHARS:
        return True
    return size <= INLINE_ASCII_CHARS and all(text.isascii() for text in texts)


def _tokenising_process() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=1,
            # Not fork: the caller has threads (the Kafka clients', the store's) whose locks a
            # forked child could inherit held.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(os.getpid(),),
        )
    return _pool


def _forget(pool: ProcessPoolExecutor) -> None:
    global _pool
    if _pool is pool:
        _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def _start(parent: int) -> None:
    """In the tokenising process, before its first batch."""
    os.nice(NICENESS)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    warm()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)
