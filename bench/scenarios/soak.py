"""The soak (SPEC §6): 50,000 messages, 20,000 of them in one channel, at a steady rate through
the whole stack, with no loss and no drift of latency.

The busy channel is a direct channel that gets 2 of every 5 sends; 30 quiet direct channels
share the other 3 (1,000 messages each). Drift compares the latency of the first and the last
tenth of the sends (by intended send time): a stack that slows down as its topics, tables and
heaps fill shows it there, where a run-wide percentile would average it away."""

from __future__ import annotations

from bench.harness import histograms
from bench.harness.context import Context, paced, pairs, use_cursors
from bench.harness.load import TEXT, Target
from bench.harness.results import Drift, SoakResults, SoakWindow, StorageCost, TableSize

MESSAGE_TABLES = ("messages", "message_sends")
"""What the Postgres message store writes per message (storage/postgres/messages.py)."""
WINDOWS = 10
BUSY_SHARE = (2, 5)
"""The busy channel's share of the sends: 2 of every 5 (20,000 of 50,000)."""
DRIFT_FACTOR = 1.5
DRIFT_SLACK_MS = {"p50": 1.0, "p99": 5.0}
"""No drift: the last tenth's p50 and p99 within 1.5x the first tenth's (plus 1 ms and 5 ms,
so that a few milliseconds of noise on a fast run do not count as drift)."""


def schedule(busy: Target, quiet: list[Target]) -> list[Target]:
    """The round-robin list of sends: the busy channel twice in every five, the quiet ones in
    turn in the other three."""
    num, den = BUSY_SHARE
    out: list[Target] = []
    q = 0
    # One period covers every quiet channel once per `den - num` quiet slots.
    periods = max(len(quiet) // (den - num), 1)
    for _ in range(periods):
        for slot in range(den):
            if slot * num % den < num:
                out.append(busy)
            else:
                out.append(quiet[q % len(quiet)])
                q += 1
    return out


def windows(tenths: list[int], latencies_us: list[int]) -> list[SoakWindow]:
    """Latency of each tenth of the planned sends, in send order (by intended send time)."""
    buckets: list[list[int]] = [[] for _ in range(WINDOWS)]
    for tenth, latency in zip(tenths, latencies_us, strict=True):
        buckets[min(tenth, WINDOWS - 1)].append(latency)
    out = []
    for i, bucket in enumerate(buckets):
        s = histograms.summary(histograms.of(bucket))
        out.append(SoakWindow(i + 1, s.count, s.p50, s.p99, s.max))
    return out


def drift(rows: list[SoakWindow]) -> Drift:
    first, last = rows[0], rows[-1]

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(b / a, 2) if a and b is not None else None

    def within(a: float | None, b: float | None, slack: float) -> bool:
        return a is not None and b is not None and b <= DRIFT_FACTOR * a + slack

    return Drift(
        p50_first_ms=first.p50,
        p50_last_ms=last.p50,
        p50_ratio=ratio(first.p50, last.p50),
        p99_first_ms=first.p99,
        p99_last_ms=last.p99,
        p99_ratio=ratio(first.p99, last.p99),
        no_drift=within(first.p50, last.p50, DRIFT_SLACK_MS["p50"])
        and within(first.p99, last.p99, DRIFT_SLACK_MS["p99"]),
    )


async def run_soak(ctx: Context) -> None:
    cfg = ctx.cfg
    base = cfg.soak_offset()
    users = ctx.users[base : base + 2 * (cfg.soak_quiet_channels + 1)]
    out = ctx.results.soak = SoakResults(
        cfg.soak_messages, cfg.soak_rate, cfg.soak_quiet_channels, len(TEXT)
    )
    channels = await ctx.directs(pairs(users))
    busy, *quiet = [Target(a, ch, 1) for (a, _), ch in zip(pairs(users), channels, strict=True)]
    plan = schedule(busy, quiet)
    use_cursors(ctx)
    await ctx.fleet.keep_only(users)
    await ctx.fleet.ensure(users)
    dsn = ctx.stack.postgres_dsn() if cfg.message_store == "postgres" else None
    sizes_before = await message_table_sizes(dsn) if dsn else None
    violations = ctx.tracker.order_violations
    run = await paced(
        ctx,
        plan,
        cfg.soak_rate,
        cfg.soak_messages / cfg.soak_rate,
        f"soak: {cfg.soak_messages:,} messages",
        "soak",
        drain_s=max(cfg.drain_s, 10.0),
        abort_after_s=max(cfg.abort_after_s, 10.0),
        keep_tenths=True,
    )
    assert run.tenths is not None
    out.run = run.row
    out.busy_channel_sends = sum(1 for i in range(run.row.sent) if plan[i % len(plan)] is busy)
    out.order_violations = ctx.tracker.order_violations - violations
    out.windows = windows(run.tenths, run.latencies_us)
    out.drift = drift(out.windows)
    sizes_after = await message_table_sizes(dsn) if dsn else None
    if sizes_before and sizes_after:
        out.postgres = storage_cost(sizes_before, sizes_after)


async def message_table_sizes(dsn: str) -> dict[str, TableSize] | None:
    """Rows and bytes on disk (heap, indexes, TOAST) of the message store's tables. The bench
    reads the database only here: what a stored message costs is not visible to a client."""
    import psycopg

    out: dict[str, TableSize] = {}
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            for table in MESSAGE_TABLES:
                cursor = await conn.execute(
                    "SELECT count(*), pg_total_relation_size(%s::regclass),"
                    " pg_relation_size(%s::regclass), pg_indexes_size(%s::regclass)"
                    f" FROM {table}",
                    (table, table, table),
                )
                row = await cursor.fetchone()
                assert row is not None
                out[table] = TableSize(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    except (psycopg.Error, OSError):
        return None
    return out


def storage_cost(before: dict[str, TableSize], after: dict[str, TableSize]) -> StorageCost:
    """Bytes on disk per message the soak stored, by table (pages are allocated 8 KiB at a
    time, so small runs round up)."""
    rows = after["messages"].rows - before["messages"].rows
    if rows <= 0:
        return StorageCost(rows, after, None)
    per: dict[str, float] = {}
    for table in MESSAGE_TABLES:
        for kind in ("heap_bytes", "index_bytes", "total_bytes"):
            grown = getattr(after[table], kind) - getattr(before[table], kind)
            per[f"{table}_{kind}"] = round(grown / rows, 1)
    per["total"] = round(sum(per[f"{t}_total_bytes"] for t in MESSAGE_TABLES), 1)
    return StorageCost(rows, after, per)
