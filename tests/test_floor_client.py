"""The bench's native floor client (bench/floorclient, built by `make test` and `make bench`)
against a real broker, one hop and two (through the relay process): every record it sends is
acknowledged and comes back once, timed; a second run times only its own records. The bench's
Kafka floors at thousands of records a second stand on it."""

from __future__ import annotations

from bench.scenarios.floor_client import BINARY
from bench.scenarios.kafka_floor import Floor

RATE = 400.0
SECONDS = 1.0
DRAIN_S = 30.0


async def check_runs(floor: Floor) -> None:
    assert BINARY.exists(), f"{BINARY} is missing: `make floorclient` builds it"
    await floor.start()
    try:
        for run in range(2):
            row, _ = await floor.run(RATE, SECONDS, DRAIN_S, seq_base=run * 10**9)
            sent = int(RATE * SECONDS)
            assert (row.sent, row.send_failed, row.missing) == (sent, 0, 0)
            # Each of this run's records timed once: none of the run before, no duplicate.
            assert row.latency_ms.count == sent
            assert row.send_lag_ms.count == sent
            if floor.hops == 2:
                assert row.relay is not None and row.relay.records == sent
    finally:
        await floor.stop()


async def test_one_hop_every_record_comes_back_once(broker: str) -> None:
    await check_runs(Floor(broker, 4, native=True))


async def test_two_hops_through_the_relay(broker: str) -> None:
    await check_runs(Floor(broker, 4, hops=2, native=True))
