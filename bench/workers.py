"""Client sockets by the thousand, held by worker processes (one process may hold at most
RLIMIT_NOFILE open files, 20,000 on this box): used by the connection-memory scenario and the
reconnect storm, and (with `bench.watchers.PresenceWorker`) by the presence scenario. Each
worker runs its own event loop and obeys commands sent over a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from bench import histograms
from parley.embedded.process import die_with_parent
from parley_client import Session, SessionError, encode_frame

P = ParamSpec("P")
R = TypeVar("R")


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


@dataclass(frozen=True)
class LevelReply:
    held: int
    opened: int
    errors: dict[str, int]
    retries: int
    connect_s: bytes
    """An encoded histogram (bench.histograms) of the seconds each socket took to sync."""
    closes: dict[str, int]
    error_samples: dict[str, str]
    elapsed_s: float


@dataclass(frozen=True)
class DropReply:
    closed: int
    elapsed_s: float


@dataclass(frozen=True)
class StormReply:
    clients: int
    synced_s: bytes
    """An encoded histogram of the seconds from the storm's start to each socket's `synced`."""
    sync_messages_min: int | None
    sync_messages_max: int | None
    sync_count_wrong: int
    failed: int
    retries: int
    errors: dict[str, int]
    error_samples: dict[str, str]


@dataclass(frozen=True)
class StatsReply:
    held: int
    closes: dict[str, int]
    frames_after_sync: int


def merged_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for one in counts:
        for k, v in one.items():
            out[k] = out.get(k, 0) + v
    return out


def first_samples(samples: Iterable[dict[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for one in samples:
        for k, v in one.items():
            out.setdefault(k, v)
    return out


def _note(samples: dict[str, str], kind: str, exc: BaseException) -> None:
    """Keep the first message of each kind of error, as evidence."""
    if kind not in samples:
        cause = f" (cause: {exc.__cause__!r})" if exc.__cause__ is not None else ""
        samples[kind] = f"{exc!r}{cause}"[:300]


@dataclass
class _Held:
    session: Session
    reader: asyncio.Task[None]
    closing: bool = False


@dataclass
class Worker:
    """The sockets of one process. Commands are the methods named in COMMANDS."""

    COMMANDS: ClassVar[frozenset[str]] = frozenset({"level", "drop", "storm", "stats"})

    url: str
    slots: list[Slot]
    progress: Synchronized[int]
    held: dict[int, _Held] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)
    frames_after_sync: int = 0
    heartbeat_s: float = 15.0

    async def _read(self, slot: Slot, session: Session) -> None:
        try:
            await self._opened(slot, session)
            async for raw in session.raw_frames():
                self.frames_after_sync += 1
                self._on_frame(slot, raw)
        except SessionError:
            pass
        finally:
            held = self.held.get(slot.index)
            if held is not None and held.session is session and not held.closing:
                key = str(session.close_code)
                self.closes[key] = self.closes.get(key, 0) + 1
                del self.held[slot.index]

    async def _opened(self, slot: Slot, session: Session) -> None:
        """Called once a kept socket is synced, before its frames are read."""

    def _on_frame(self, slot: Slot, raw: str | bytes) -> None:
        """Called for every frame a kept socket receives after `synced`."""

    async def _open(self, slot: Slot, timeout_s: float, errors: dict[str, int]) -> Session | None:
        """One attempt to connect and sync; a failure is counted by kind in `errors`."""
        try:
            return await Session.connect(
                self.url, slot.token, slot.cursors, timeout_s=timeout_s, proxy=None, max_queue=256
            )
        except Exception as exc:
            kind = exc.kind if isinstance(exc, SessionError) else type(exc).__name__
            errors[kind] = errors.get(kind, 0) + 1
            _note(self.error_samples, kind, exc)
            return None

    def _keep(self, slot: Slot, session: Session) -> None:
        assert session.welcome is not None
        self.heartbeat_s = session.welcome.heartbeat_interval_s
        self.held[slot.index] = _Held(session, asyncio.create_task(self._read(slot, session)))

    async def heartbeats(self) -> None:
        beat = encode_frame({"type": "heartbeat"})
        while True:
            await asyncio.sleep(max(self.heartbeat_s * 0.6, 1.0))
            for held in list(self.held.values()):
                with contextlib.suppress(SessionError):
                    await held.session.send_raw(beat)

    async def level(self, target: int, concurrency: int, timeout_s: float) -> LevelReply:
        """Hold exactly the slots whose global index is below `target`."""
        started = time.monotonic()
        extra = [i for i in self.held if i >= target]
        await self._close([self.held[i] for i in extra], remove=extra)
        wanted = [s for s in self.slots if s.index < target and s.index not in self.held]
        semaphore = asyncio.Semaphore(concurrency)
        errors: dict[str, int] = {}
        times: list[float] = []
        retries = 0
        deadline = started + timeout_s

        async def one(slot: Slot) -> None:
            nonlocal retries
            async with semaphore:
                for attempt in range(4):
                    remaining = deadline - time.monotonic()
                    if remaining <= 1:
                        errors["deadline"] = errors.get("deadline", 0) + 1
                        return
                    session = await self._open(slot, min(remaining, 60), errors)
                    if session is None:
                        if attempt < 3:
                            retries += 1
                            await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    self._keep(slot, session)
                    times.append(session.synced_s or 0.0)
                    with self.progress.get_lock():
                        self.progress.value += 1
                    return

        await asyncio.gather(*(one(s) for s in wanted))
        return LevelReply(
            held=len(self.held),
            opened=len(times),
            errors=errors,
            retries=retries,
            connect_s=histograms.encode(histograms.of_seconds(times)),
            closes=dict(self.closes),
            error_samples=dict(self.error_samples),
            elapsed_s=time.monotonic() - started,
        )

    async def _close(self, held: list[_Held], remove: list[int] | None = None) -> None:
        for h in held:
            h.closing = True
        await asyncio.gather(
            *(asyncio.wait_for(h.session.close(), 5) for h in held), return_exceptions=True
        )
        for h in held:
            h.reader.cancel()
        await asyncio.gather(*(h.reader for h in held), return_exceptions=True)
        for index in remove or []:
            self.held.pop(index, None)

    async def drop(self) -> DropReply:
        """Close every socket at once (a normal close handshake, all concurrently)."""
        started = time.monotonic()
        held = list(self.held.values())
        count = len(held)
        await self._close(held)
        self.held.clear()
        return DropReply(count, time.monotonic() - started)

    async def storm(self, start_at: float, target: int, deadline_s: float) -> StormReply:
        """At monotonic time `start_at` (shared by all workers), reconnect every slot below
        `target` at once; each retries (with jitter) until it is synced or the deadline."""
        slots = [s for s in self.slots if s.index < target]
        await asyncio.sleep(max(start_at - time.monotonic(), 0))
        deadline = start_at + deadline_s
        errors: dict[str, int] = {}
        times: list[float] = []
        sync_counts: list[int] = []
        sync_wrong = 0
        retries = 0
        failed = 0

        async def one(slot: Slot) -> None:
            nonlocal retries, failed, sync_wrong
            attempt = 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failed += 1
                    return
                session = await self._open(slot, remaining, errors)
                if session is None:
                    attempt += 1
                    retries += 1
                    await asyncio.sleep(random.uniform(0.1, min(0.25 * 2**attempt, 3.0)))
                    continue
                times.append(time.monotonic() - start_at)
                sync_counts.append(session.sync_messages)
                if session.sync_messages != slot.expected_sync:
                    sync_wrong += 1
                self._keep(slot, session)
                with self.progress.get_lock():
                    self.progress.value += 1
                return

        await asyncio.gather(*(one(s) for s in slots))
        return StormReply(
            clients=len(slots),
            synced_s=histograms.encode(histograms.of_seconds(times)),
            sync_messages_min=min(sync_counts, default=None),
            sync_messages_max=max(sync_counts, default=None),
            sync_count_wrong=sync_wrong,
            failed=failed,
            retries=retries,
            errors=errors,
            error_samples=dict(self.error_samples),
        )

    async def stats(self) -> StatsReply:
        return StatsReply(len(self.held), dict(self.closes), self.frames_after_sync)


async def _serve(worker: Worker, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    heartbeats = asyncio.create_task(worker.heartbeats())
    try:
        while True:
            command, args, kwargs = await loop.run_in_executor(None, conn.recv)
            if command == "quit":
                await worker.drop()
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
    finally:
        heartbeats.cancel()


def worker_main(
    url: str,
    slots: list[Slot],
    conn: Connection,
    progress: Synchronized[int],
    kind: type[Worker] = Worker,
) -> None:
    import uvloop

    from bench.stack import raise_nofile_limit

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

    def reset_progress(self) -> None:
        for counter in self.progress:
            with counter.get_lock():
                counter.value = 0

    def progress_total(self) -> int:
        return sum(c.value for c in self.progress)

    async def call(
        self,
        command: Callable[Concatenate[Any, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> list[R]:
        """Run one of the workers' commands (a method of its class) in every worker; returns
        their replies."""
        replies = await self._send(command.__name__, args, kwargs)
        for reply in replies:
            if isinstance(reply, RuntimeError):
                raise RuntimeError(f"worker failed {command.__name__}: {reply}")
        return replies  # what `command` returns, pickled

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
