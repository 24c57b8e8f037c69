"""The cost of replication (`--cluster`): each latency run and throughput step of the
single-node stack beside the same run on the cluster (three Kafka brokers, replication 3,
`min.insync.replicas=2`; with scylla three Cassandra nodes), and cluster / single."""

from __future__ import annotations

from bench.harness.results import LoadRow, Replicated, Results, Side
from bench.report.verdicts import md_table

FIGURES = (
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("delivered_per_s", "delivered/s"),
    ("stack_us_per_delivery", "stack µs/delivery"),
    ("broker_us_per_delivery", "broker µs/delivery"),
    ("store_us_per_delivery", "store µs/delivery"),
)
"""The figures of a run, in the table's order; then the box's `machine` and `other` cores."""
NAMES = (*(name for name, _ in FIGURES), "machine_cores", "other_cores")


def _figures(row: LoadRow, store: str) -> dict[str, float | None]:
    per = row.cpu.stack_us_per_delivery if row.cpu else {}
    cores = row.cpu.cores if row.cpu else {}
    return {
        "p50_ms": row.latency_ms.p50,
        "p99_ms": row.latency_ms.p99,
        "delivered_per_s": row.delivered_per_s,
        "stack_us_per_delivery": per.get("total"),
        "broker_us_per_delivery": per.get("broker"),
        "store_us_per_delivery": per.get("cassandra" if store == "scylla" else "postgres"),
        "machine_cores": cores.get("machine"),
        "other_cores": cores.get("other"),
    }


def _runs(results: Results) -> dict[tuple[str, float], LoadRow]:
    """Each latency run and throughput step by (run, offered msgs/s)."""
    runs: dict[tuple[str, float], LoadRow] = {}
    for row in results.latency.runs if results.latency else []:
        runs[(f"latency {row.scenario}", row.offered_per_s)] = row
    for curve in results.throughput.curves if results.throughput else []:
        for row in curve.steps:
            runs[(f"throughput, {curve.kind}", row.offered_per_s)] = row
    return runs


def compare(single: Results, cluster: Results) -> list[Replicated]:
    """Every run either stack made (a step one of them did not reach: its figures None), in
    the single-node run's order; then each throughput curve's best rate within the bound."""
    mine, theirs = _runs(single), _runs(cluster)
    out = []
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        a = _figures(mine[key], single.meta.message_store) if key in mine else {}
        b = _figures(theirs[key], cluster.meta.message_store) if key in theirs else {}
        figures = {name: Side.of(a.get(name), b.get(name)) for name in NAMES}
        out.append(Replicated(key[0], key[1], figures))
    best = {c.kind: c for c in cluster.throughput.curves} if cluster.throughput else {}
    for curve in single.throughput.curves if single.throughput else []:
        other = best.get(curve.kind)
        side = Side.of(
            curve.max_delivered_per_s_within_bound,
            other.max_delivered_per_s_within_bound if other else None,
        )
        run = f"throughput, {curve.kind}: best delivered/s within the p99 bound"
        out.append(Replicated(run, None, {"max_delivered_per_s_within_bound": side}))
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _side(side: Side | None) -> str:
    if side is None:
        return "— | — | —"
    ratio = f"{side.ratio:g}x" if side.ratio is not None else "—"
    return f"{_num(side.single)} | {_num(side.cluster)} | {ratio}"


def _cores(side: Side | None, which: str) -> str:
    return _num(getattr(side, which)) if side is not None else "—"


def table(results: Results) -> list[str]:
    """The side-by-side table: per figure single, cluster, and cluster / single."""
    head = "run | offered msgs/s | " + " | ".join(
        f"{label} single | cluster | x" for _, label in FIGURES
    )
    head += " | machine / other cores single | cluster"
    cells = []
    for row in results.replication:
        f = row.figures
        best = row.offered_per_s is None  # a curve's best rate within the bound
        sides = [
            f.get(
                "max_delivered_per_s_within_bound" if best and name == "delivered_per_s" else name
            )
            for name, _ in FIGURES
        ]
        machine, other = f.get("machine_cores"), f.get("other_cores")
        cells.append(
            f"{row.run} | {'—' if best else f'{row.offered_per_s:g}'} | "
            + " | ".join(_side(side) for side in sides)
            + f" | {_cores(machine, 'single')} / {_cores(other, 'single')}"
            + f" | {_cores(machine, 'cluster')} / {_cores(other, 'cluster')}"
        )
    return md_table(head, cells)


def section(results: Results) -> list[str]:
    """The Markdown section of a `--cluster` run."""
    cluster = results.cluster
    if cluster is None:
        return []
    meta, single = cluster.meta, results.meta
    brokers = "three Kafka brokers (replication 3, `min.insync.replicas=2`)"
    store = (
        "three Cassandra nodes (keyspace replication 3, `LOCAL_QUORUM`)"
        if meta.message_store == "scylla"
        else "one Postgres"
    )
    lines = [
        "",
        "## The cost of replication: single node vs cluster",
        "",
        f"The same scenarios ({', '.join(meta.scenarios)}) on {meta.stack}: {brokers} and "
        f"{store}, beside the single-node stack above (one broker, replication 1; "
        f"{single.message_store}). x is cluster / single. µs/delivery: the stack's CPU over "
        "the run and its drain, idle use included, per delivery (`broker` is all three "
        "brokers together; `store` the message store: Postgres, or with scylla all its "
        "Cassandra nodes). `machine` is the box's busy cores and `other` what no process of "
        "the bench or the stack used (someone else's work on a shared box): compare runs "
        f"only where `other` is alike. The cluster stack started in {meta.startup_s} s; its "
        f"idle CPU was {meta.idle_stack_cpu_cores} (single node: "
        f"{single.idle_stack_cpu_cores}); load average before {meta.loadavg_before}, after "
        f"{meta.loadavg_after}; {meta.total_s} s.",
        "",
        *table(results),
    ]
    if cluster.skipped:
        lines += ["", "Skipped or failed on the cluster:", ""]
        lines += [f"- {k}: {v}" for k, v in cluster.skipped.items()]
    if cluster.notes:
        lines += ["", "Notes of the cluster run:", ""] + [f"- {n}" for n in cluster.notes]
    return lines
