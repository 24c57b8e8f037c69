"""Sockets kept open: `Sockets` (synced, heartbeating, each read by a task of its own) is the
base of the latency scenarios' `bench.harness.load.Fleet`, in the bench's own process, and of `Worker`.
Workers hold client sockets by the thousand in processes of their own (one process may hold
at most RLIMIT_NOFILE open files, 20,000 on this box): for the connection-memory scenario and
the reconnect storm, and (with `bench.scenarios.watchers.PresenceWorker`) the presence scenario. Each
worker runs its own event loop and obeys commands sent over a pipe; the pool merges their
replies into one."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, is_dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar

from bench.harness.progress import bar as progress_bar
from bench.harness.results import Connects
from devstack.embedded.process import die_with_parent
from parley_client import Session, SessionError, encode_frame

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D", bound="DataclassInstance")
K = TypeVar("K", bound=Hashable)


@dataclass(eq=False, slots=True)
class Held:
    session: Session
    reader: asyncio.Task[None] = field(init=False)
    closing: bool = False


def jittered(failures: int) -> float:
    """The storm's pause before another attempt: random, doubling up to 3 s."""
    return random.uniform(0.1, min(0.25 * 2**failures, 3.0))


class Sockets(Generic[K]):
    """Synced sockets kept by key, each read by a task of its own, heartbeating as the protocol
    asks (one loop for all of them: there may be thousands)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held: dict[K, Held] = {}
        self.closes: Counter[str] = Counter()
        """Sockets that closed without being asked to, by close code."""
        self.heartbeat_s = 15.0
        self._beating: asyncio.Task[None] | None = None

    async def connect(
        self,
        token: str,
        cursors: dict[str, str],
        connects: Connects,
        deadline: float,
        attempts: int | None = 4,
        pause: Callable[[int], float] = lambda failures: 0.2 * failures,
    ) -> Session | None:
        """Connect and sync, again after each failure (counted in `connects`), until it worked,
        `attempts` failed or the monotonic `deadline` passed."""
        failures = 0
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                session = await Session.connect(
                    self.url,
                    token,
                    cursors,
                    timeout_s=min(remaining, 60),
                    proxy=None,
                    max_queue=256,
                )
            except Exception as exc:
                kind = exc.kind if isinstance(exc, SessionError) else type(exc).__name__
                connects.errors[kind] += 1
                if kind not in connects.error_samples:  # the first of each kind, as evidence
                    cause = f" (cause: {exc.__cause__!r})" if exc.__cause__ is not None else ""
                    connects.error_samples[kind] = f"{exc!r}{cause}"[:300]
                failures += 1
                if failures == attempts:
                    break
                connects.retries += 1
                await asyncio.sleep(pause(failures))
            else:
                assert session.welcome is not None
                self.heartbeat_s = session.welcome.heartbeat_interval_s
                connects.opened += 1
                return session
        else:
            connects.errors["deadline"] += 1
        connects.failed += 1
        return None

    def keep(self, key: K, session: Session) -> None:
        held = self.held[key] = Held(session)
        held.reader = asyncio.create_task(self._read(key, held))
        if self._beating is None:
            self._beating = asyncio.create_task(self._heartbeats())

    async def opened(self, key: K, session: Session) -> None:
        """A kept socket is synced, before its frames are read."""

    def on_frame(self, key: K, raw: str | bytes) -> None:
        """Each frame a kept socket receives after `synced`."""

    async def _read(self, key: K, held: Held) -> None:
        try:
            await self.opened(key, held.session)
            async for raw in held.session.raw_frames():
                self.on_frame(key, raw)
        except SessionError:
            pass
        finally:
            if not held.closing:
                self.closes[str(held.session.close_code)] += 1
                if self.held.get(key) is held:
                    del self.held[key]

    async def _heartbeats(self) -> None:
        beat = encode_frame({"type": "heartbeat"})
        while True:
            await asyncio.sleep(max(self.heartbeat_s * 0.6, 1.0))
            for held in list(self.held.values()):
                with contextlib.suppress(SessionError):
                    await held.session.send_raw(beat)

    async def close(self, keys: Collection[K]) -> int:
        """Close these sockets, all at once (a closing handshake each); returns how many."""
        held = [self.held.pop(k) for k in list(keys) if k in self.held]
        for h in held:
            h.closing = True
        closing = (asyncio.wait_for(h.session.close(), 5) for h in held)
        await asyncio.gather(*closing, return_exceptions=True)
        for h in held:
            h.reader.cancel()
        await asyncio.gather(*(h.reader for h in held), return_exceptions=True)
        return len(held)

    async def close_all(self) -> int:
        closed = await self.close(list(self.held))
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None
        return closed


@dataclass(frozen=True)
class Slot:
    """One client socket to keep: its global index, its device token, the cursors to send in
    `hello`, and how many messages its sync should bring."""

    index: int
    token: str
    cursors: dict[str, str]
    expected_sync: int
    user_id: str = ""
    watch: tuple[str, ...] = ()
    """Users to `presence.subscribe` to once synced (the presence scenario only)."""


# The replies of the workers' commands: each worker's counts, which `merge` adds up.


@dataclass
class LevelReply:
    held: int = 0
    closes: Counter[str] = field(default_factory=Counter)
    connects: Connects = field(default_factory=Connects)
    synced_s: list[float] = field(default_factory=list)
    """Seconds each socket opened took to connect and sync."""


@dataclass
class DropReply:
    closed: int
    elapsed_s: float


@dataclass
class StormReply:
    connects: Connects = field(default_factory=Connects)
    synced_s: list[float] = field(default_factory=list)
    """Seconds from the storm's start to each socket's `synced`."""
    sync_messages: Counter[int] = field(default_factory=Counter)
    """Sockets by the number of messages their sync brought."""
    sync_count_wrong: int = 0


@dataclass
class StatsReply:
    held: int
    closes: Counter[str]
    frames_after_sync: int


def merge(replies: Sequence[D]) -> D:
    """Every worker's reply to a command as one: numbers and counts add up, durations take the
    longest, lists join, records merge field by field, and the first error sample of each
    kind stays."""

    def combine(values: list[Any]) -> Any:
        head = values[0]
        if is_dataclass(head):
            return merge(values)
        if isinstance(head, Counter):
            return sum(values, Counter())
        if isinstance(head, dict):
            return {k: v for d in reversed(values) for k, v in d.items()}
        if isinstance(head, list):
            return [x for v in values for x in v]
        return max(values) if isinstance(head, float) else sum(values)

    first = replies[0]
    return type(first)(
        **{f.name: combine([getattr(r, f.name) for r in replies]) for f in fields(first)}
    )


class Worker(Sockets[int]):
    """The sockets of one process, by slot index. Commands are the methods named in COMMANDS."""

    COMMANDS: ClassVar[frozenset[str]] = frozenset({"level", "drop", "storm", "stats"})

    def __init__(self, url: str, slots: list[Slot], progress: Synchronized[int]) -> None:
        super().__init__(url)
        self.slots = slots
        self.progress = progress
        self.frames_after_sync = 0

    def keep(self, key: int, session: Session) -> None:
        super().keep(key, session)
        with self.progress.get_lock():
            self.progress.value += 1

    def on_frame(self, key: int, raw: str | bytes) -> None:
        self.frames_after_sync += 1

    async def level(self, target: int, concurrency: int, timeout_s: float) -> LevelReply:
        """Hold exactly the slots whose global index is below `target`."""
        await self.close([i for i in self.held if i >= target])
        semaphore = asyncio.Semaphore(concurrency)
        deadline = time.monotonic() + timeout_s
        out = LevelReply()

        async def one(slot: Slot) -> None:
            async with semaphore:
                session = await self.connect(slot.token, slot.cursors, out.connects, deadline)
            if session is not None:
                out.synced_s.append(session.synced_s or 0.0)
                self.keep(slot.index, session)

        await asyncio.gather(
            *(one(s) for s in self.slots if s.index < target and s.index not in self.held)
        )
        out.held, out.closes = len(self.held), self.closes.copy()
        return out

    async def drop(self) -> DropReply:
        """Close every socket at once (a normal close handshake, all concurrently)."""
        started = time.monotonic()
        closed = await self.close(list(self.held))
        return DropReply(closed, time.monotonic() - started)

    async def storm(self, start_at: float, target: int, deadline_s: float) -> StormReply:
        """At monotonic time `start_at` (shared by all workers), reconnect every slot below
        `target` at once; each retries (with jitter) until it is synced or the deadline."""
        await asyncio.sleep(max(start_at - time.monotonic(), 0))
        deadline = start_at + deadline_s
        out = StormReply()

        async def one(slot: Slot) -> None:
            session = await self.connect(
                slot.token, slot.cursors, out.connects, deadline, attempts=None, pause=jittered
            )
            if session is None:
                return
            out.synced_s.append(time.monotonic() - start_at)
            out.sync_messages[session.sync_messages] += 1
            if session.sync_messages != slot.expected_sync:
                out.sync_count_wrong += 1
            self.keep(slot.index, session)

        await asyncio.gather(*(one(s) for s in self.slots if s.index < target))
        return out

    async def stats(self) -> StatsReply:
        return StatsReply(len(self.held), self.closes.copy(), self.frames_after_sync)


async def _serve(worker: Worker, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command, args, kwargs = await loop.run_in_executor(None, conn.recv)
        if command == "quit":
            await worker.close_all()
            conn.send(None)
            return
        reply: object
        try:
            if command in worker.COMMANDS:
                reply = await getattr(worker, command)(*args, **kwargs)
            else:
                reply = RuntimeError(f"unknown command {command}")
        except Exception as exc:  # goes back pickled, to be raised there
            reply = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(reply)


def worker_main(
    url: str,
    slots: list[Slot],
    conn: Connection,
    progress: Synchronized[int],
    kind: type[Worker] = Worker,
) -> None:
    import uvloop

    from bench.harness.stack import raise_nofile_limit

    die_with_parent(signal.SIGTERM)
    raise_nofile_limit()
    uvloop.run(_serve(kind(url, slots, progress), conn))


class WorkerPool:
    """`workers` processes of `kind`; slot i is held by worker i % workers, so any level n is
    spread evenly."""

    def __init__(
        self, url: str, slots: list[Slot], workers: int, kind: type[Worker] = Worker
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workers = max(1, min(workers, len(slots)))
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pool")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self.progress: list[Synchronized[int]] = []
        for w in range(self.workers):
            parent, child = ctx.Pipe()
            counter: Synchronized[int] = ctx.Value("i", 0)
            proc = ctx.Process(
                target=worker_main,
                args=(url, slots[w :: self.workers], child, counter, kind),
                name=f"bench-worker-{w}",
                daemon=True,
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
            self.progress.append(counter)

    async def call(
        self,
        command: Callable[Concatenate[Any, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run one of the workers' commands (a method of its class) in every worker; returns
        their replies merged into one."""
        replies = await self._send(command.__name__, args, kwargs)
        for reply in replies:
            if isinstance(reply, RuntimeError):
                raise RuntimeError(f"worker failed {command.__name__}: {reply}")
        return merge(replies)  # type: ignore[no-any-return]  # what `command` returns, pickled

    async def hold(
        self, target: int, concurrency: int, timeout_s: float, desc: str, total: int
    ) -> LevelReply:
        """`Worker.level` in every worker, at most `concurrency` connecting at once in all,
        with a progress bar of the `total` sockets to open."""
        per_worker = max(concurrency // self.workers, 4)
        call = self.call(Worker.level, target, per_worker, timeout_s)
        return await self.with_progress(total, desc, call)

    async def with_progress(self, total: int, desc: str, call: Awaitable[R]) -> R:
        """Await a call, with a progress bar of the sockets the workers keep meanwhile."""
        for counter in self.progress:
            with counter.get_lock():
                counter.value = 0
        with progress_bar(total, desc, "sock") as bar:
            task = asyncio.ensure_future(call)
            while not task.done():
                await asyncio.wait([task], timeout=0.25)
                bar.update(sum(c.value for c in self.progress) - bar.n)
            return task.result()

    async def _send(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        loop = asyncio.get_running_loop()

        def roundtrip(conn: Connection) -> Any:
            conn.send((name, args, kwargs))
            return conn.recv()

        return list(
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, roundtrip, c) for c in self._conns)
            )
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._send("quit", (), {}), 30)
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)
