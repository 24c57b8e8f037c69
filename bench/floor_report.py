"""The floors' part of the results: the idempotent and transactional floors at the target
rate, the transactional floor beside the idempotent one, and the depth probe."""

from __future__ import annotations

from typing import Any

from bench.verdict import TARGET_RATE, Verdict, fmt_ms


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    """The floors at the target rate: what the broker alone costs, idempotent and with a
    transaction per batch (the figure that decides whether processors adopt transactions)."""
    floor = results.get("floor", {})
    out = []
    for key, label in (("runs", "floor"), ("transactional_runs", "transactional floor")):
        runs = floor.get(key) or []
        if not runs:
            continue
        row = min(runs, key=lambda r: abs(r["offered_per_s"] - TARGET_RATE))
        lat = row["latency_ms"]
        notes = []
        ratio = row.get("ratio_to_idempotent_floor")
        if ratio:
            notes.append(f"{ratio['p50']}x / {ratio['p99']}x the idempotent floor")
            notes.append(f"{row.get('records_per_transaction_mean')} records per transaction")
        lost = row["missing"] + row["produce_errors"]
        if lost:
            notes.append(f"{lost} records lost")
        out.append(
            Verdict(
                f"{label} p50 / p99 @ {row['offered_per_s']:g} records/s",
                f"{fmt_ms(lat['p50'])} / {fmt_ms(lat['p99'])}",
                "measure",
                None,
                "; ".join(notes),
            )
        )
    return out


def transaction_details(results: dict[str, Any]) -> list[str]:
    floor = results.get("floor", {})
    txn = floor.get("transactional_runs") or []
    if not txn:
        return []
    plain = {r["offered_per_s"]: r for r in floor.get("runs", [])}
    lines = [
        "",
        "## The floor with Kafka transactions (a transaction per batch, read_committed)",
        "",
        "The same round trip and rates as the floor above, through a transactional producer: "
        "each batch of the records due while the previous transaction was committing is one "
        "transaction (begin, send, commit), and the consumer reads with "
        "`isolation_level=read_committed`. This is the latency a processor that commits its "
        "output and offsets in one transaction would add per hop (without "
        "`send_offsets_to_transaction`, which adds two more requests per transaction). "
        + (
            "aiokafka's 20 ms retry after CONCURRENT_TRANSACTIONS was set to "
            f"{floor['txn_retry_ms']:g} ms (`--floor-txn-retry-ms`)."
            if floor.get("txn_retry_ms") is not None
            else "aiokafka as released: it waits 20 ms before retrying a transaction the broker "
            "still reports busy with the previous commit (`--floor-txn-retry-ms` changes it)."
        ),
        "",
        "| offered/s | idempotent p50 / p99 | transactional p50 / p99 | ratio p50 / p99 "
        "| transactions | records per transaction (mean / max) | commit p50 / p99 | lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in txn:
        base = plain.get(r["offered_per_s"])
        lat, ratio = r["latency_ms"], r.get("ratio_to_idempotent_floor") or {}
        ref = base["latency_ms"] if base else {}
        commit = r.get("transaction_ms") or {}
        lines.append(
            f"| {r['offered_per_s']:g} | {fmt_ms(ref.get('p50'))} / {fmt_ms(ref.get('p99'))} "
            f"| {fmt_ms(lat['p50'])} / {fmt_ms(lat['p99'])} "
            f"| {ratio.get('p50', '—')} / {ratio.get('p99', '—')} | {r.get('transactions', '—')} "
            f"| {r.get('records_per_transaction_mean', '—')} / {r.get('records_per_transaction_max', '—')} "
            f"| {fmt_ms(commit.get('p50'))} / {fmt_ms(commit.get('p99'))} "
            f"| {r['missing'] + r['produce_errors']} |"
        )
    return lines


def depth_details(results: dict[str, Any]) -> list[str]:
    probe = results.get("floor", {}).get("depth_probe")
    if not probe:
        return []
    timeout = probe["fetch_timeout_s"]

    def took(value: float | None) -> str:
        return f"{value * 1000:.1f} ms" if value is not None else f"nothing in {timeout:g} s"

    fetches = "; ".join(
        f"{s['records']:,}: newest {took(s['fetch_newest_s'])}, oldest "
        f"{took(s['fetch_oldest_s'])} ({s['single_record_produces_per_s']:,}/s written)"
        for s in probe["steps"]
    )
    lines = [
        "",
        f"Depth probe (one partition filled with single-record batches by {probe['writers']} "
        f"writers, then a fetch of its newest and oldest record; batches: fetch times): "
        f"{fetches}.",
    ]
    if probe.get("fetch_failed_at_records"):
        lines.append(
            f"**The broker did not serve the partition within {timeout:g} s once it held "
            f"{probe['fetch_failed_at_records']:,} batches.**"
        )
    return lines
