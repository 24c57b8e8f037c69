"""The floor scenario: every floor (bench/scenarios/kafka_floor.py, echo.py) at every latency
rate, one after the other at each rate, on the same broker, Postgres and machine as the Parley
figures of the same run, so that each Parley figure reads as a multiple of what the parts
beneath it cost at the least; then the depth probe (bench/scenarios/depth.py)."""

from __future__ import annotations

from bench.harness import cpu
from bench.harness.context import Context
from bench.harness.results import FloorResults, FloorRun, Ratios
from bench.harness.roundtrip import RoundTrip
from bench.scenarios import floor_client
from bench.scenarios.depth import depth_probe
from bench.scenarios.echo import EchoFloor
from bench.scenarios.kafka_floor import FETCH_MAX_WAIT_MS, Floor


async def warm_up(floor: RoundTrip) -> None:
    """Round trips first, so metadata, connections, the relay's first fetches and (for
    transactions) the producer id and the coordinator are not measured."""
    await floor.run(100, 2.0, 10, seq_base=10**12)


def _floors(ctx: Context, out: FloorResults) -> list[tuple[RoundTrip, list[FloorRun], str]]:
    """Each floor, where its rows go, and its key among the plotted histograms."""
    cfg, bootstrap = ctx.cfg, ctx.stack.kafka_bootstrap
    floors: list[tuple[RoundTrip, list[FloorRun], str]] = []
    if bootstrap:
        partitions = cfg.floor_partitions
        native = cfg.floor_client == "native" and floor_client.BINARY.exists()
        out.client = "native (franz-go)" if native else "aiokafka, in the bench's process"
        if cfg.floor_client == "native" and not native:
            out.client += ": the native client is not built (`make floorclient`)"
        floors.append((Floor(bootstrap, partitions, native=native), out.runs, "floor"))
        if cfg.floor_transactions:
            txn = Floor(
                bootstrap, partitions, transactional=True, txn_retry_ms=cfg.floor_txn_retry_ms
            )
            floors.append((txn, out.transactional_runs, "floor-txn"))
        if cfg.floor_relays:
            bare = Floor(bootstrap, partitions, hops=2, native=native)
            floors.append((bare, out.two_hop_runs, "floor-2hop"))
            dsn = ctx.stack.postgres_dsn()
            if dsn:
                durable = Floor(bootstrap, partitions, hops=2, dsn=dsn, native=native)
                floors.append((durable, out.durable_runs, "floor-durable"))
            else:
                out.error = "no durable floor: only a stack the bench started has a known Postgres"
    else:
        out.error = "no broker address (use --kafka-bootstrap with --url): no Kafka floors"
    if cfg.floor_echo:
        floors.append((EchoFloor(cfg.pairs), out.echo_runs, "floor-echo"))
    return floors


async def run_floor(ctx: Context) -> None:
    cfg, bootstrap = ctx.cfg, ctx.stack.kafka_bootstrap
    out = ctx.results.floor = FloorResults()
    out.bootstrap, out.partitions = bootstrap, cfg.floor_partitions
    out.fetch_max_wait_ms, out.txn_retry_ms = FETCH_MAX_WAIT_MS, cfg.floor_txn_retry_ms
    floors = _floors(ctx, out)
    try:
        for floor, _, _ in floors:
            await floor.start()
            await warm_up(floor)
        for n, rate in enumerate(cfg.latency_rates):
            for floor, rows, key in floors:
                before = cpu.snapshot(ctx.stack)
                row, latency = await floor.run(
                    rate, cfg.latency_duration_s, cfg.drain_s, seq_base=n * 10**9
                )
                row.cpu = cpu.cost(
                    cpu.used(before, cpu.snapshot(ctx.stack)), row.sent, ctx.idle_cores
                )
                ctx.plotted[f"{key}@{rate:g}"] = latency
                rows.append(row)
    finally:
        for floor, _, _ in floors:
            await floor.stop()
    # The other Kafka floors as multiples of the one-hop floor at the same rate.
    plain = {r.offered_per_s: r for r in out.runs}
    for row in [*out.transactional_runs, *out.two_hop_runs, *out.durable_runs]:
        base = plain.get(row.offered_per_s)
        if base is not None:
            row.ratio_to_idempotent_floor = Ratios.of(row.latency_ms, base.latency_ms)
    if cfg.depth_probe and bootstrap:
        out.depth_probe = await depth_probe(bootstrap, max_records=2_000 if cfg.quick else 20_000)
