"""The soak (SPEC §6): 50,000 messages, 20,000 of them in one channel, at a steady rate through
the whole stack, with no loss and no drift of latency.

The busy channel is a direct channel that gets 2 of every 5 sends; 30 quiet direct channels
share the other 3 (1,000 messages each). Drift compares the latency of the first and the last
tenth of the sends (by intended send time): a stack that slows down as its topics, tables and
heaps fill shows it there, where a run-wide percentile would average it away."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.api import User
from bench.load import TEXT, Target, paced_load
from bench.scenarios import Context
from bench.stack import cpu_delta, cpu_snapshot
from bench.stats import summarize_ns
from bench.verdict import Verdict, fmt_ms

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


def windows(t0s: list[int], latencies: list[int], start: int, end: int) -> list[dict[str, Any]]:
    """Latency summaries of each tenth of the send window, by intended send time."""
    span = max(end - start, 1)
    buckets: list[list[int]] = [[] for _ in range(WINDOWS)]
    for t0, latency in zip(t0s, latencies, strict=True):
        index = min(max((t0 - start) * WINDOWS // span, 0), WINDOWS - 1)
        buckets[index].append(latency)
    out = []
    for i, bucket in enumerate(buckets):
        summary = summarize_ns(bucket)
        out.append(
            {
                "window": i + 1,
                "deliveries": summary["count"],
                "p50": summary["p50"],
                "p99": summary["p99"],
                "max": summary["max"],
            }
        )
    return out


def drift(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    out: dict[str, Any] = {}
    ok = True
    for key, slack in DRIFT_SLACK_MS.items():
        a, b = first[key], last[key]
        out[f"{key}_first_ms"], out[f"{key}_last_ms"] = a, b
        out[f"{key}_ratio"] = round(b / a, 2) if a and b is not None else None
        if a is None or b is None or b > DRIFT_FACTOR * a + slack:
            ok = False
    out["no_drift"] = ok
    return out


async def run_soak(ctx: Context) -> None:
    cfg = ctx.cfg
    base = cfg.soak_offset()
    users = ctx.users[base : base + 2 * (cfg.soak_quiet_channels + 1)]
    out: dict[str, Any] = {
        "messages": cfg.soak_messages,
        "rate": cfg.soak_rate,
        "quiet_channels": cfg.soak_quiet_channels,
        "text_chars": len(TEXT),
    }
    ctx.results["soak"] = out
    semaphore = asyncio.Semaphore(8)

    async def direct(i: int) -> Target:
        a, b = users[2 * i], users[2 * i + 1]
        async with semaphore:
            channel_id = await ctx.api.direct(a, b)
        ctx.note_channel(channel_id, a, b)
        return Target(a, channel_id, 1)

    targets = await asyncio.gather(*(direct(i) for i in range(cfg.soak_quiet_channels + 1)))
    busy, quiet = targets[0], list(targets[1:])
    plan = schedule(busy, quiet)

    async def cursors(user: User) -> dict[str, str]:
        return await ctx.api.last_message_ids(user)

    ctx.fleet.cursors = cursors
    await ctx.fleet.keep_only(users)
    await ctx.fleet.ensure(users)
    dsn = ctx.stack.postgres_dsn() if cfg.message_store == "postgres" else None
    sizes_before = await message_table_sizes(dsn) if dsn else None
    before = cpu_snapshot(ctx.stack)
    run = await paced_load(
        ctx.fleet,
        plan,
        cfg.soak_rate,
        cfg.soak_messages / cfg.soak_rate,
        f"soak: {cfg.soak_messages:,} messages",
        drain_s=max(cfg.drain_s, 10.0),
        abort_after_s=max(cfg.abort_after_s, 10.0),
        keep_send_times=True,
    )
    used = cpu_delta(before, cpu_snapshot(ctx.stack))
    busy_sends = sum(1 for i in range(run.sent) if plan[i % len(plan)] is busy)
    assert run.sample_t0_ns is not None
    start = min(run.sample_t0_ns, default=0)
    end = start + int(run.window_s * 1e9)
    rows = windows(run.sample_t0_ns, run.latencies_ns, start, end)
    out.update(
        sent=run.sent,
        busy_channel_sends=busy_sends,
        delivered=run.delivered,
        missing=run.missing,
        send_failed=run.send_failed,
        unaccepted=run.unaccepted,
        errors=run.errors,
        aborted=run.aborted,
        order_violations=ctx.tracker.order_violations,
        latency_ms=summarize_ns(run.latencies_ns),
        send_lag_ms=summarize_ns(run.send_lag_ns),
        windows=rows,
        drift=drift(rows),
        cpu=used,
    )
    sizes_after = await message_table_sizes(dsn) if dsn else None
    if sizes_before and sizes_after:
        out["postgres"] = storage_cost(sizes_before, sizes_after)


async def message_table_sizes(dsn: str) -> dict[str, dict[str, int]] | None:
    """Rows and bytes on disk (heap, indexes, TOAST) of the message store's tables. The bench
    reads the database only here: what a stored message costs is not visible to a client."""
    import psycopg

    out: dict[str, dict[str, int]] = {}
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
                out[table] = {
                    "rows": int(row[0]),
                    "total_bytes": int(row[1]),
                    "heap_bytes": int(row[2]),
                    "index_bytes": int(row[3]),
                }
    except (psycopg.Error, OSError):
        return None
    return out


def storage_cost(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """Bytes on disk per message the soak stored, by table (pages are allocated 8 KiB at a
    time, so small runs round up)."""
    rows = after["messages"]["rows"] - before["messages"]["rows"]
    out: dict[str, Any] = {"messages_stored": rows, "tables": after}
    if rows <= 0:
        return out
    per: dict[str, float] = {}
    for table in MESSAGE_TABLES:
        for kind in ("heap_bytes", "index_bytes", "total_bytes"):
            grown = after[table][kind] - before[table][kind]
            per[f"{table}_{kind}"] = round(grown / rows, 1)
    per["total"] = round(sum(per[f"{t}_total_bytes"] for t in MESSAGE_TABLES), 1)
    out["bytes_per_message"] = per
    return out


def verdict(results: dict[str, Any]) -> Verdict:
    soak = results.get("soak")
    figure = "soak: 50,000 messages (20,000 in one channel)"
    if not soak or "sent" not in soak:
        return Verdict(figure, "not run", "no loss, no drift", None)
    lost = soak["missing"] + soak["send_failed"]
    d = soak["drift"]
    measured = (
        f"{lost:,} lost; p99 {fmt_ms(d['p99_first_ms'])} → {fmt_ms(d['p99_last_ms'])} "
        "(first → last tenth)"
    )
    notes = [
        f"{soak['sent']:,} sent at {soak['rate']:g}/s, {soak['busy_channel_sends']:,} "
        "in the busy channel",
        f"p50 {fmt_ms(d['p50_first_ms'])} → {fmt_ms(d['p50_last_ms'])}",
        f"{soak['order_violations']} order violations",
    ]
    if soak.get("aborted"):
        notes.append("stopped early: " + soak["aborted"])
    full = soak["sent"] >= 50_000 and soak["busy_channel_sends"] >= 20_000
    if not full:
        notes.append("smaller than the SPEC's soak")
    ok = not lost and not soak.get("aborted") and d["no_drift"] and not soak["order_violations"]
    return Verdict(
        f"soak: {soak['sent']:,} messages ({soak['busy_channel_sends']:,} in one channel)",
        measured,
        f"no loss, no drift (last tenth ≤ {DRIFT_FACTOR:g}x first)",
        ok if full else None,
        "; ".join(notes),
    )


def details(results: dict[str, Any]) -> list[str]:
    soak = results.get("soak")
    if not soak or "windows" not in soak:
        return []
    lat = soak["latency_ms"]
    lines = [
        "",
        f"## Soak ({soak['sent']:,} messages at {soak['rate']:g}/s; "
        f"{soak['busy_channel_sends']:,} in one channel, the rest over "
        f"{soak['quiet_channels']} channels)",
        "",
        f"Whole run: p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}, max "
        f"{fmt_ms(lat['max'])}; {soak['missing']} lost, {soak['unaccepted']} not accepted, "
        f"{soak['order_violations']} order violations; errors {soak['errors'] or 'none'}.",
        "",
        *_storage_lines(soak),
        "| tenth of the sends | deliveries | p50 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for row in soak["windows"]:
        lines.append(
            f"| {row['window']} | {row['deliveries']:,} | {fmt_ms(row['p50'])} "
            f"| {fmt_ms(row['p99'])} | {fmt_ms(row['max'])} |"
        )
    return lines


def _storage_lines(soak: dict[str, Any]) -> list[str]:
    per = (soak.get("postgres") or {}).get("bytes_per_message")
    if not per:
        return []
    return [
        f"Postgres on disk per stored message ({soak['postgres']['messages_stored']:,} stored "
        f"by the soak, ~{soak.get('text_chars', 0)}-character texts): {per['total']:,.0f} bytes "
        f"(`messages` heap {per['messages_heap_bytes']:,.0f} + indexes "
        f"{per['messages_index_bytes']:,.0f}; `message_sends` heap "
        f"{per['message_sends_heap_bytes']:,.0f} + indexes "
        f"{per['message_sends_index_bytes']:,.0f}), before WAL and replicas.",
        "",
    ]
