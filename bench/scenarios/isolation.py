"""Isolation (SPEC §6): one user's costly traffic (huge texts, search floods) leaves other
users' delivery p99 under 100 ms. Unrelated 1:1 pairs send steadily through four phases
(baseline, huge-text flood, after the flood, search flood); each phase reports their latency,
what was lost, duplicated or out of order, and the CPU by process. The phases, sizes and
verdicts are described once, in bench/README.md ("What each scenario measures", 7)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from bench.harness import cpu, histograms
from bench.harness.context import Context, paced, pairs, settle_stack
from bench.harness.histograms import Summary
from bench.harness.load import Fleet, Run, Target, quiesce
from bench.harness.results import HugeTextFlood, IsolationPhase, IsolationResults, SearchFlood
from parley_client import Client, Login, Session, SessionError, encode_frame

HUGE_TEXT = "\ufdfa" * 100_000
"""The costliest text the server accepts: 100,000 characters, 18 times longer under NFKC."""
SEND_RATE_PER_S = 20.0
SEND_BURST = 50
"""The server's default send limit per device (schemas/settings.py), kept by the client."""
QUERY = "a"
SEARCH_LIMIT = 100
SEED_CHARS = 2_000
BOUND_MS = 100.0
"""SPEC §6: other users' delivery p99 under 100 ms."""
ALONE = 5
"""Searches asked one at a time before the baseline: one answer's time, unqueued."""
FLOOD_DEADLINE_S = 90.0
"""How long after its first send the flood's texts may take to arrive."""


def seed_text(i: int) -> str:
    """A 2,000-character message holding the word `a` many times."""
    return (f"a note {i}: " + "a lorem ipsum dolor sit amet, a consectetur elit " * 50)[:SEED_CHARS]


@dataclass
class Delivered:
    """The steady traffic's deliveries, by run (the tag of its client_msg_ids): how often each
    send arrived at its receiver, and the sends that came after a later one of their channel."""

    counts: Counter[int] = field(default_factory=Counter)
    late_in_order: list[int] = field(default_factory=list)


class CountingFleet(Fleet):
    """The pairs' sockets: the tracker's latency accounting, and beside it each message's
    deliveries counted by client_msg_id (exactly once) and their order per channel (in send
    order: each pair has one sender, which sends in sequence)."""

    def __init__(self, url: str, ctx: Context) -> None:
        super().__init__(url, ctx.tracker, ctx.api.last_message_ids)
        self.runs: dict[str, Delivered] = {}
        self.last_seq: dict[tuple[str, str, str], int] = {}
        self.label = ""
        """The paced run under way: the tags first seen meanwhile are its own."""
        self.labels: dict[str, str] = {}

    def on_frame(self, key: str, raw: str | bytes) -> None:
        super().on_frame(key, raw)
        frame = orjson.loads(raw)
        if frame.get("type") != "message":
            return
        if frame.get("sender_device_id") == self.users[key].device_id:
            return
        cmid = frame.get("client_msg_id")
        if not isinstance(cmid, str) or "-" not in cmid:
            return
        tag, _, number = cmid.rpartition("-")
        if not number.isdigit():
            return
        seq = int(number)
        run = self.runs.get(tag)
        if run is None:
            run = self.runs[tag] = Delivered()
            self.labels[tag] = self.label
        run.counts[seq] += 1
        where = (key, frame["channel_id"], tag)
        last = self.last_seq.get(where, -1)
        if seq < last:
            run.late_in_order.append(seq)
        else:
            self.last_seq[where] = seq

    def of(self, label: str) -> Delivered:
        """The deliveries of the paced run called `label`."""
        return next(
            (d for tag, d in self.runs.items() if self.labels.get(tag) == label), Delivered()
        )


async def run_isolation(ctx: Context) -> None:
    cfg = ctx.cfg
    base = cfg.isolation_offset()
    users = ctx.users[base : base + 2 * cfg.isolation_pairs + 4]
    steady_users = users[: 2 * cfg.isolation_pairs]
    flooder, flood_receiver, searcher, seeder = users[2 * cfg.isolation_pairs :]
    out = ctx.results.isolation = IsolationResults(
        cfg.isolation_pairs, cfg.isolation_rate, cfg.isolation_seconds, BOUND_MS
    )
    channels = await ctx.directs(
        [*pairs(steady_users), (flooder, flood_receiver), (seeder, searcher)]
    )
    steady = [Target(a, ch, 1) for (a, _), ch in zip(pairs(steady_users), channels, strict=False)]
    flood_channel, search_channel = channels[-2], channels[-1]
    fleet = CountingFleet(ctx.ws_url, ctx)
    flood = HugeFloodClient(ctx, flooder, flood_receiver, flood_channel, cfg.isolation_huge_texts)
    searches = Client(
        ctx.stack.http_url,
        timeout_s=30,
        max_connections=cfg.isolation_searchers,
        trust_env=False,
    )
    try:
        await fleet.ensure(steady_users)
        out.search = SearchFlood(
            cfg.isolation_searchers,
            cfg.isolation_seconds,
            QUERY,
            SEARCH_LIMIT,
            cfg.isolation_seed_messages,
            SEED_CHARS,
        )
        out.search.seed_s = await _seed(ctx, seeder, searcher, search_channel, out.search)
        out.search.alone_ms = await _searches_alone(searches, searcher, out.search)
        await flood.open()
        out.flood = flood.out
        warm = await _paced(ctx, fleet, steady, min(cfg.isolation_rate, 50.0), 2.0, "warm-up")
        out.warm_up = warm[0].row
        await _between(ctx)
        rate, seconds = cfg.isolation_rate, cfg.isolation_seconds
        run, cores = await _paced(ctx, fleet, steady, rate, seconds, "isolation: baseline")
        out.phases += _phases(fleet, run, ["baseline"], cores)
        await _between(ctx)
        # The flood and the next phase: one run of twice the phase, split at its middle.
        sending = asyncio.create_task(flood.send_all())
        run, cores = await _paced(
            ctx, fleet, steady, rate, 2 * seconds, "isolation: huge-text flood, then after", 2
        )
        out.phases += _phases(fleet, run, ["huge-text flood", "after the flood"], cores)
        await flood.finish(sending)
        await _between(ctx)
        before = cpu.snapshot(ctx.stack)
        searching = asyncio.create_task(
            _search_flood(searches, searcher, cfg.isolation_searchers, seconds, out.search)
        )
        run, cores = await _paced(ctx, fleet, steady, rate, seconds, "isolation: search flood")
        await searching
        out.phases += _phases(fleet, run, ["search flood"], cores)
        baseline = out.phases[0].cpu_cores
        out.search.cpu_ms_per_answer = _per_answer(
            cpu.used(before, cpu.snapshot(ctx.stack)), baseline, out.search.queries
        )
    finally:
        await flood.close()
        await searches.aclose()
        await fleet.close_all()


async def _between(ctx: Context) -> None:
    await quiesce(ctx.tracker, 0.5, ctx.cfg.quiesce_max_s)
    await settle_stack(ctx, ctx.cfg.quiesce_max_s)


async def _paced(
    ctx: Context,
    fleet: CountingFleet,
    targets: list[Target],
    rate: float,
    duration_s: float,
    label: str,
    parts: int = 1,
) -> tuple[Run, list[dict[str, float]]]:
    """A paced run of the steady traffic, and the cores by role over each of its `parts`
    (equal slices of its send window; the drain counts with the last)."""
    fleet.label = label
    snapshots = [cpu.snapshot(ctx.stack)]

    async def slices() -> None:
        for i in range(1, parts):
            # The pacer starts 50 ms after the call (bench/harness/load.py).
            await asyncio.sleep(
                max(snapshots[0].at + 0.05 + i * duration_s / parts - time.monotonic(), 0)
            )
            snapshots.append(cpu.snapshot(ctx.stack))

    slicer = asyncio.create_task(slices())
    try:
        abort_after_s = max(ctx.cfg.abort_after_s, 10.0)
        run = await paced(
            ctx,
            targets,
            rate,
            duration_s,
            label,
            abort_after_s=abort_after_s,
            fleet=fleet,
            keep_tenths=parts > 1,
        )
    finally:
        slicer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slicer
    snapshots.append(cpu.snapshot(ctx.stack))
    return run, [cpu.used(a, b).cores() for a, b in itertools.pairwise(snapshots)]


def _phases(
    fleet: CountingFleet, run: Run, names: list[str], cores: list[dict[str, float]]
) -> list[IsolationPhase]:
    """A paced run as `len(names)` phases, split by intended send time (send i of n falls in
    part i * parts // n)."""
    row, parts = run.row, len(names)
    delivered = fleet.of(row.scenario)
    latencies = _by_part(run.latencies_us, run.tenths, parts)
    accepts = _by_part(run.accept_us, run.accept_tenths, parts)
    out = []
    for part, name in enumerate(names):
        sent = sum(1 for i in range(row.sent) if i * parts // run.count == part)
        got = len(latencies[part])
        counts = [n for seq, n in delivered.counts.items() if seq * parts // run.count == part]
        summary = histograms.summary(histograms.of(latencies[part]))
        out.append(
            IsolationPhase(
                phase=name,
                offered_per_s=row.offered_per_s,
                seconds=round(row.send_window_s / parts, 2),
                sent=sent,
                delivered=got,
                lost=max(sent - got, 0),
                received=len(counts),
                duplicates=sum(n - 1 for n in counts if n > 1),
                out_of_order=sum(
                    1 for seq in delivered.late_in_order if seq * parts // run.count == part
                ),
                latency_ms=summary,
                accept_ms=histograms.summary(histograms.of(accepts[part])),
                send_lag_ms=row.send_lag_ms,
                aborted=row.aborted,
                cpu_cores=cores[min(part, len(cores) - 1)],
            )
        )
    return out


def _by_part(samples: list[int], tenths: list[int] | None, parts: int) -> list[list[int]]:
    """Samples split into `parts` by the tenth of the planned sends each belongs to."""
    if parts == 1:
        return [samples]
    assert tenths is not None
    out: list[list[int]] = [[] for _ in range(parts)]
    for tenth, sample in zip(tenths, samples, strict=True):
        out[min(tenth * parts // 10, parts - 1)].append(sample)
    return out


async def _seed(
    ctx: Context, seeder: Login, searcher: Login, channel: str, out: SearchFlood
) -> float | None:
    """`out.seeded` long messages holding the query's word, in the searcher's channel; returns
    the seconds until the last of them was searchable (None: not within 60 s)."""
    began = time.monotonic()
    socket = await ctx.api.connect(seeder, url=ctx.ws_url)
    marker = f"seedend{uuid.uuid4().hex[:10]}"
    try:
        for i in range(out.seeded):
            text = seed_text(i) if i < out.seeded - 1 else f"{marker} {seed_text(i)}"[:SEED_CHARS]
            await socket.send_message(channel, text)
            if i % 50 == 49:
                await asyncio.sleep(0.1)  # a few hundred a second: not a flood of its own
        while time.monotonic() - began < 60:
            response = await ctx.api.request(
                "GET", "/v1/search", auth=searcher, params={"q": marker, "channel_id": channel}
            )
            if response.status_code == 200 and response.json()["results"]:
                return round(time.monotonic() - began, 2)
            await asyncio.sleep(0.2)
        return None
    finally:
        await socket.close()


async def _searches_alone(client: Client, searcher: Login, out: SearchFlood) -> Summary:
    """The same search, one at a time (`ALONE` of them): what one answer takes unqueued."""
    params: dict[str, str | int] = {"q": out.query, "limit": out.limit}
    times_us = []
    for _ in range(ALONE):
        started = time.perf_counter()
        response = await client.request("GET", "/v1/search", auth=searcher, params=params)
        times_us.append(round((time.perf_counter() - started) * 1e6))
        out.alone_statuses[str(response.status_code)] += 1
    return histograms.summary(histograms.of(times_us))


def _per_answer(used: cpu.Used, baseline: dict[str, float], answers: int) -> dict[str, float]:
    """CPU ms per search answer by process of the stack, over the whole search flood (until
    its last answer), net of what each used in the baseline phase (the pairs' traffic)."""
    if not answers:
        return {}
    out: dict[str, float] = {}
    for role in ("gateway", "processor", "broker", "postgres"):
        if role in used.by_role:
            net = used.by_role[role] - baseline.get(role, 0.0) * used.wall_s
            out[role] = round(1e3 * max(net, 0.0) / answers, 1)
    return out


async def _search_flood(
    client: Client, searcher: Login, clients: int, seconds: float, out: SearchFlood
) -> None:
    """`clients` loops of `GET /v1/search?q=a&limit=100` as the one user, for `seconds`."""
    params: dict[str, str | int] = {"q": out.query, "limit": out.limit}
    times_us: list[int] = []
    ok_us: list[int] = []
    results = body_bytes = 0
    began = time.monotonic()
    deadline = began + seconds

    async def one() -> None:
        nonlocal results, body_bytes
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = await client.request("GET", "/v1/search", auth=searcher, params=params)
            except httpx.HTTPError as exc:
                out.statuses[type(exc).__name__] += 1
                continue
            took = round((time.perf_counter() - started) * 1e6)
            times_us.append(took)
            out.statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                ok_us.append(took)
                body_bytes += len(response.content)
                results += len(orjson.loads(response.content)["results"])
            elif response.status_code == 429:
                wait = response.headers.get("retry-after")
                with contextlib.suppress(ValueError):
                    await asyncio.sleep(min(float(wait or 0), 1.0))

    await asyncio.gather(*(one() for _ in range(clients)))
    elapsed = time.monotonic() - began
    out.queries = sum(out.statuses.values())
    out.latency_ms = histograms.summary(histograms.of(times_us))
    out.ok_latency_ms = histograms.summary(histograms.of(ok_us))
    if ok_us:
        out.results_per_answer = round(results / len(ok_us), 1)
        out.kib_per_answer = round(body_bytes / len(ok_us) / 1024, 1)
    out.answers_per_s = round(out.queries / elapsed, 1) if elapsed > 0 else None
    out.elapsed_s = round(elapsed, 2)


class HugeFloodClient:
    """The flooding user's socket and its receiver's, each read by a task of its own."""

    def __init__(
        self, ctx: Context, sender: Login, receiver: Login, channel: str, texts: int
    ) -> None:
        self.ctx = ctx
        self.sender, self.receiver, self.channel = sender, receiver, channel
        tag = f"flood{uuid.uuid4().hex[:6]}-"
        self.cmids = [f"{tag}{i}" for i in range(texts)]
        self.frames = {
            cmid: encode_frame(
                {"type": "send", "client_msg_id": cmid, "channel_id": channel, "text": HUGE_TEXT}
            )
            for cmid in self.cmids
        }
        self.out = HugeTextFlood(
            texts=texts,
            text_chars=len(HUGE_TEXT),
            nfkc_chars=len(unicodedata.normalize("NFKC", HUGE_TEXT)),
            frame_bytes=len(self.frames[self.cmids[0]].encode()),
            rate_per_s=SEND_RATE_PER_S,
            burst=SEND_BURST,
        )
        self.sockets: list[Session] = []
        self.readers: list[asyncio.Task[None]] = []
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.first_send: dict[str, int] = {}
        self.accepted: set[str] = set()
        self.failed: set[str] = set()
        self.deliveries: Counter[str] = Counter()
        self.latencies_us: list[int] = []
        self.last_seq = -1
        self.started_ns = 0
        self.answered = asyncio.Event()
        self.all_delivered = asyncio.Event()

    async def open(self) -> None:
        api, url = self.ctx.api, self.ctx.ws_url
        cursors = await api.last_message_ids(self.sender)
        sender = await api.connect(self.sender, cursors, url=url)
        receiver = await api.connect(
            self.receiver, await api.last_message_ids(self.receiver), url=url
        )
        self.sockets = [sender, receiver]
        self.readers = [
            asyncio.create_task(self._read_sender(sender)),
            asyncio.create_task(self._read_receiver(receiver)),
            asyncio.create_task(self._heartbeats()),
        ]

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(9.0)
            for socket in self.sockets:
                with contextlib.suppress(SessionError):
                    await socket.heartbeat()

    async def send_all(self) -> None:
        """Every text, as the client-side bucket (20/s, burst 50) lets it go; a text refused
        with `rate_limited` is queued again, after one token's time."""
        socket = self.sockets[0]
        for cmid in self.cmids:
            self.queue.put_nowait(cmid)
        tokens, refilled = float(SEND_BURST), time.monotonic()
        self.started_ns = time.monotonic_ns()
        while not self.answered.is_set():
            getter = asyncio.ensure_future(self.queue.get())
            waiter = asyncio.ensure_future(self.answered.wait())
            done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            waiter.cancel()
            cmid = getter.result()
            now = time.monotonic()
            tokens = min(tokens + (now - refilled) * SEND_RATE_PER_S, SEND_BURST)
            refilled = now
            if tokens < 1:
                await asyncio.sleep((1 - tokens) / SEND_RATE_PER_S)
                tokens, refilled = 1.0, time.monotonic()
            tokens -= 1
            self.first_send.setdefault(cmid, time.monotonic_ns())
            try:
                await socket.send_raw(self.frames[cmid])
            except SessionError as exc:
                self.out.errors[f"send: {exc.kind}"] += 1
                break
            self.out.sends += 1
            self.out.sends_done_s = self._since_start()

    def _since_start(self) -> float:
        return round((time.monotonic_ns() - self.started_ns) / 1e9, 3)

    async def _read_sender(self, socket: Session) -> None:
        async for raw in socket.raw_frames():
            frame = orjson.loads(raw)
            kind, ref = frame.get("type"), frame.get("client_msg_id") or frame.get("ref")
            if ref not in self.frames:
                continue
            if kind == "accepted" and ref not in self.accepted:
                self.accepted.add(ref)
            elif kind == "error":
                code = str(frame.get("code"))
                if code == "rate_limited":
                    self.out.rate_limited += 1
                    asyncio.get_running_loop().call_later(
                        1.0 / SEND_RATE_PER_S, self.queue.put_nowait, ref
                    )
                    continue
                self.out.errors[code] += 1
                self.failed.add(ref)
            else:
                continue
            if len(self.accepted) + len(self.failed) == len(self.cmids):
                self.out.all_accepted_s = self._since_start()
                self.answered.set()
        self._closed(socket, "sender")

    async def _read_receiver(self, socket: Session) -> None:
        async for at, raw in socket.stamped_frames():
            frame = orjson.loads(raw)
            cmid = frame.get("client_msg_id")
            if frame.get("type") != "message" or cmid not in self.frames:
                continue
            self.deliveries[cmid] += 1
            if self.deliveries[cmid] > 1:
                self.out.duplicates += 1
                continue
            if frame.get("text") != HUGE_TEXT:
                self.out.wrong_text += 1
            seq = self.cmids.index(cmid)
            if seq < self.last_seq:
                self.out.out_of_order += 1
            self.last_seq = max(self.last_seq, seq)
            self.latencies_us.append((at - self.first_send.get(cmid, at)) // 1000)
            self.out.delivered = len(self.deliveries)
            if self.out.delivered == len(self.cmids):
                self.out.all_delivered_s = round((at - self.started_ns) / 1e9, 3)
                self.all_delivered.set()
        self._closed(socket, "receiver")

    def _closed(self, socket: Session, who: str) -> None:
        self.out.closes[f"{who} {socket.close_code}"] = 1

    async def finish(self, sending: asyncio.Task[None]) -> None:
        """Wait (within the flood's deadline) until every text was answered and arrived."""
        left = FLOOD_DEADLINE_S - (time.monotonic_ns() - self.started_ns) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_delivered.wait(), max(left, 0.1))
        self.answered.set()
        await sending
        self.out.latency_ms = histograms.summary(histograms.of(self.latencies_us))

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for socket in self.sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        self.out.latency_ms = histograms.summary(histograms.of(self.latencies_us))
        self.out.closes = {k: v for k, v in self.out.closes.items() if not k.endswith(" 1000")}
