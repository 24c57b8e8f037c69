"""The floors' own sections of the Markdown summary: the relays of the two-hop floors, the
transactional floor beside the one-hop floor, and the depth probe. (The floors' latencies are
rows of the latency table, beside Parley's, in bench/report/markdown.py.)"""

from __future__ import annotations

from bench.harness.results import Results
from bench.report.verdicts import fmt_ms, md_table


def relays(results: Results) -> list[str]:
    floor = results.floor
    runs = [*floor.two_hop_runs, *floor.durable_runs] if floor else []
    if not runs:
        return []
    lines = [
        "",
        "## The two-hop floors' relays",
        "",
        "A relay process consumes topic A in `getmany` batches, re-produces each record to "
        "topic B (acks=all, idempotent) and awaits the acks before its next batch; the durable "
        "relay first writes the batch to the stack's Postgres in one statement "
        "(`INSERT … SELECT FROM unnest(…)`, autocommit). Per batch: the Postgres write and the "
        "re-produce until acked. `floor` cores: the relay process itself.",
        "",
    ]
    head = "floor | offered/s | batches | records per batch (mean / max) "
    head += "| Postgres write p50 / p99 | re-produce p50 / p99 | floor cores | bench cores"
    cells = []
    for r in runs:
        relay, cores = r.relay, r.cpu.cores if r.cpu else {}
        if relay is None:
            continue
        write = relay.write_ms
        cells.append(
            f"{r.scenario} | {r.offered_per_s:g} | {relay.batches:,} "
            f"| {relay.records_per_batch_mean} / {relay.records_per_batch_max} "
            f"| {fmt_ms(write.p50) if write else '—'} / {fmt_ms(write.p99) if write else '—'} "
            f"| {fmt_ms(relay.produce_ms.p50)} / {fmt_ms(relay.produce_ms.p99)} "
            f"| {cores.get('floor', '—')} | {cores.get('bench', '—')}"
        )
    return lines + md_table(head, cells)


def transactions(results: Results) -> list[str]:
    floor = results.floor
    if floor is None or not floor.transactional_runs:
        return []
    plain = {r.offered_per_s: r for r in floor.runs}
    retry = (
        "aiokafka's 20 ms retry after CONCURRENT_TRANSACTIONS was set to "
        f"{floor.txn_retry_ms:g} ms (`--floor-txn-retry-ms`)."
        if floor.txn_retry_ms is not None
        else "aiokafka as released: it waits 20 ms before retrying a transaction the broker "
        "still reports busy with the previous commit (`--floor-txn-retry-ms` changes it)."
    )
    lines = [
        "",
        "## The floor with Kafka transactions (a transaction per batch, read_committed)",
        "",
        "The same round trip and rates as the floor above, through a transactional producer: "
        "each batch of the records due while the previous transaction was committing is one "
        "transaction (begin, send, commit), and the consumer reads with "
        "`isolation_level=read_committed`. This is the latency a processor that commits its "
        "output and offsets in one transaction would add per hop (without "
        "`send_offsets_to_transaction`, which adds two more requests per transaction). " + retry,
        "",
    ]
    head = "offered/s | idempotent p50 / p99 | transactional p50 / p99 | ratio p50 / p99 "
    head += "| transactions | records per transaction (mean / max) | commit p50 / p99 | lost "
    head += "| send lag p50 / p99 / max"
    cells = []
    for r in floor.transactional_runs:
        base = plain.get(r.offered_per_s)
        ref_p50, ref_p99 = (base.latency_ms.p50, base.latency_ms.p99) if base else (None, None)
        ratio, commit, lag = r.ratio_to_idempotent_floor, r.transaction_ms, r.send_lag_ms
        cells.append(
            f"{r.offered_per_s:g} | {fmt_ms(ref_p50)} / {fmt_ms(ref_p99)} "
            f"| {fmt_ms(r.latency_ms.p50)} / {fmt_ms(r.latency_ms.p99)} "
            f"| {ratio.p50 if ratio else '—'} / {ratio.p99 if ratio else '—'} "
            f"| {r.transactions} "
            f"| {r.records_per_transaction_mean} / {r.records_per_transaction_max} "
            f"| {fmt_ms(commit.p50 if commit else None)} / "
            f"{fmt_ms(commit.p99 if commit else None)} | {r.lost} "
            f"| {fmt_ms(lag.p50)} / {fmt_ms(lag.p99)} / {fmt_ms(lag.max)}"
        )
    return lines + md_table(head, cells)


def depth(results: Results) -> list[str]:
    probe = results.floor.depth_probe if results.floor else None
    if probe is None:
        return []
    timeout = probe.fetch_timeout_s

    def took(value: float | None) -> str:
        return f"{value * 1000:.1f} ms" if value is not None else f"nothing in {timeout:g} s"

    fetches = "; ".join(
        f"{s.records:,}: newest {took(s.fetch_newest_s)}, oldest {took(s.fetch_oldest_s)} "
        f"({s.single_record_produces_per_s or 0:,}/s written)"
        for s in probe.steps
    )
    lines = [
        "",
        f"Depth probe (one partition filled with single-record batches by {probe.writers} "
        f"writers, then a fetch of its newest and oldest record; batches: fetch times): "
        f"{fetches}.",
    ]
    if probe.fetch_failed_at_records:
        lines.append(
            f"**The broker did not serve the partition within {timeout:g} s once it held "
            f"{probe.fetch_failed_at_records:,} batches.**"
        )
    return lines
