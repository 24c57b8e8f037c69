"""Presence records per online socket: what idle, heartbeating sockets cost the presence topic
and the processor, with nothing else going on.

`python -m bench.scenarios.presence_records --sockets 2000` starts `parley dev` on free ports (as
`make bench` does), signs up one user per socket, holds the sockets in `--workers` client
processes (heartbeating as the protocol asks: every 0.6 x `heartbeat_interval_s`, as the
connections scenario's sockets do), and after a warm-up counts, over `--window-s`:

- the records produced to `parley.presence.v1` (the sum of its partitions' end offsets);
- the CPU of the processor and the gateway (psutil), and the processor's CPU when idle,
  measured before any socket connected.

It prints one JSON line; figures per 10,000 sockets are scaled linearly from the sockets held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import cpu
from bench.harness.admin import partition_count
from bench.harness.context import create_users
from bench.harness.stack import raise_nofile_limit, start_stack
from bench.harness.workers import Slot, Worker, WorkerPool
from parley_client import Client

EVENTS_TOPIC = "parley.presence.v1"


async def _end_offset_sum(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return sum(ends.values())


async def measure(
    sockets: int, workers: int, warmup_s: float, window_s: float
) -> dict[str, object]:
    raise_nofile_limit()
    stack = start_stack(time.monotonic(), False, None, "postgres")
    assert stack.kafka_bootstrap is not None
    pool: WorkerPool | None = None
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    try:
        await consumer.start()
        count = await partition_count(stack.kafka_bootstrap, EVENTS_TOPIC)
        partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(count)]
        await asyncio.sleep(10)
        idle = await cpu.idle_cores(stack, 30)
        async with Client(stack.http_url, timeout_s=120) as client:
            users = await create_users(client, sockets, 16, [])
        slots = [Slot(i, u.token, {}, 0, u.user_id) for i, u in enumerate(users)]
        pool = WorkerPool(stack.ws_url, slots, workers)
        level = await pool.hold(sockets, 64, 600.0, f"connect {sockets}", sockets)
        print(f"{level.held} sockets held", file=sys.stderr)
        await asyncio.sleep(warmup_s)
        offsets0, cpu0 = await _end_offset_sum(consumer, partitions), cpu.snapshot(stack)
        await asyncio.sleep(window_s)
        offsets1, cpu1 = await _end_offset_sum(consumer, partitions), cpu.snapshot(stack)
        held = (await pool.call(Worker.stats)).held
        used = cpu.used(cpu0, cpu1)
        cores = used.cores()
        records_per_s = (offsets1 - offsets0) / used.wall_s
        scale = 10_000 / held if held else 0.0
        # From CPU seconds, not the rounded cores: the processor's share is a few hundredths.
        processor = used.by_role.get("processor", 0.0) / used.wall_s
        processor_net = max(processor - idle.get("processor", 0.0), 0.0)
        return {
            "sockets_connected": level.held,
            "sockets_held_at_end": held,
            "window_s": used.wall_s,
            "presence_partitions": count,
            "presence_records": offsets1 - offsets0,
            "presence_records_per_s": round(records_per_s, 2),
            "presence_records_per_s_per_10k": round(records_per_s * scale, 1),
            "processor_cores": round(processor, 4),
            "processor_idle_cores": idle.get("processor", 0.0),
            "processor_net_cores_per_10k": round(processor_net * scale, 4),
            "processor_net_us_per_record": (
                round(1e6 * processor_net / records_per_s) if records_per_s else None
            ),
            "gateway_cores": cores.get("gateway", 0.0),
            "broker_cores": cores.get("broker", 0.0),
            "machine_cores": cores.get("machine", 0.0),
            "other_cores": cores.get("other", 0.0),
        }
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await consumer.stop()
        if pool is not None:
            await pool.close()
        stack.stop()
        stack.cleanup(keep=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--window-s", type=float, default=120.0)
    args = parser.parse_args()
    started = time.monotonic()
    out = asyncio.run(measure(args.sockets, args.workers, args.warmup_s, args.window_s))
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
