"""Command-line options and the sizes of each scenario (default run and `--quick`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = ("floor", "connections", "storm", "latency", "throughput")
"""Run order. Memory per connection is measured first, on a gateway that has not yet carried
the latency and throughput load (whose freed heap would hide the cost of new sockets)."""


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def _ints(text: str) -> list[int]:
    return [int(x) for x in _rates(text)]


def _only(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    return [s for s in SCENARIOS if s in names]


@dataclass
class Config:
    url: str | None = None
    kafka_bootstrap: str | None = None
    gateway_pid: int | None = None
    only: list[str] = field(default_factory=lambda: list(SCENARIOS))
    quick: bool = False
    results_dir: Path = Path("bench/results")
    keep_data: bool = False
    restart: bool = True
    verbose: bool = False
    max_minutes: float = 11.0
    signup_concurrency: int = 2
    # Latency (and the floor, at the same rates).
    latency_rates: list[float] = field(default_factory=lambda: [100.0, 1000.0])
    latency_duration_s: float = 10.0
    pairs: int = 10
    group_size: int = 100
    # Throughput.
    throughput_rates: list[float] = field(
        default_factory=lambda: [500.0, 1000.0, 2000.0, 3000.0, 5000.0, 8000.0]
    )
    step_s: float = 10.0
    throughput_pairs: int = 50
    p99_bound_ms: float = 100.0
    # Connections and the reconnect storm.
    conn_levels: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    sockets_per_user: int = 40
    workers: int = 4
    connect_concurrency: int = 64
    storm_clients: int = 5000
    storm_deadline_s: float = 60.0
    unread_per_channel: int = 3
    # Bounds.
    drain_s: float = 5.0
    quiesce_max_s: float = 20.0
    abort_after_s: float = 5.0

    def users_needed(self) -> int:
        need = 2
        if "latency" in self.only:
            need = max(need, 2 * self.pairs, self.group_size)
        if "throughput" in self.only:
            need = max(need, self.throughput_offset() + 2 * self.throughput_pairs)
        need = max(need, self.conn_users())
        return need

    def throughput_offset(self) -> int:
        """Throughput pairs are users other than the latency group's members, so a backlog
        left by a saturated group run does not land on their sockets."""
        return self.group_size if "latency" in self.only else 0

    def conn_sockets(self) -> int:
        top = 0
        if "connections" in self.only:
            top = max(self.conn_levels)
        if "storm" in self.only:
            top = max(top, self.storm_clients)
        return top

    def conn_users(self) -> int:
        sockets = self.conn_sockets()
        if sockets == 0:
            return 0
        # At least 4 users: the unread messages go into a ring of direct channels (i, i+2).
        return max(math.ceil(sockets / self.sockets_per_user), 4)


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Parley benchmarks (SPEC §6): latency, throughput, idle connection memory, "
        "reconnect storm, and the broker floor. Only against 127.0.0.1.",
    )
    parser.add_argument(
        "--url",
        help="benchmark a running stack at this http://127.0.0.1:PORT instead of starting "
        "`parley dev`",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        help="with --url: the broker for the floor scenario (default 127.0.0.1:19092)",
    )
    parser.add_argument(
        "--gateway-pid", type=int, help="with --url: the gateway process to measure RSS of"
    )
    parser.add_argument(
        "--only", type=_only, help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts (~1 minute): a smoke test"
    )
    parser.add_argument("--results-dir", type=Path, help="default bench/results")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    parser.add_argument(
        "--restart",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="restart parley dev (emptying its in-memory broker) before each heavy scenario "
        "(default: on, off with --quick, whose counts never fill the broker)",
    )
    parser.add_argument("--verbose", action="store_true", help="echo the parley dev output")
    parser.add_argument("--max-minutes", type=float, help="skip scenarios that would start later")
    parser.add_argument("--latency-rates", type=_rates, help="msgs/s, default 100,1000")
    parser.add_argument(
        "--with-5k", action="store_true", help="also measure latency (and the floor) at 5,000/s"
    )
    parser.add_argument("--latency-duration", type=float, help="seconds per latency run")
    parser.add_argument("--pairs", type=int, help="1:1 pairs in the latency scenario")
    parser.add_argument("--group-size", type=int, help="members of the latency group (≤ 100)")
    parser.add_argument("--throughput-rates", type=_rates, help="offered msgs/s per step")
    parser.add_argument("--step-seconds", type=float, help="seconds per throughput step")
    parser.add_argument("--throughput-pairs", type=int, help="1:1 pairs in the throughput scenario")
    parser.add_argument("--conn-levels", type=_ints, help="idle sockets, default 1000,5000,10000")
    parser.add_argument("--sockets-per-user", type=int, help="sockets sharing one device token")
    parser.add_argument("--workers", type=int, help="client processes holding idle sockets")
    parser.add_argument("--storm-clients", type=int, help="clients in the reconnect storm")
    parser.add_argument("--signup-concurrency", type=int, help="parallel signups/logins")
    args = parser.parse_args(argv)

    cfg = Config()
    if args.quick:
        cfg.quick = True
        cfg.latency_rates = [100.0, 300.0]
        cfg.latency_duration_s = 3.0
        cfg.pairs = 3
        cfg.group_size = 10
        cfg.throughput_rates = [200.0, 500.0]
        cfg.step_s = 3.0
        cfg.throughput_pairs = 5
        cfg.conn_levels = [200, 500]
        cfg.sockets_per_user = 20
        cfg.workers = 2
        cfg.storm_clients = 500
        cfg.storm_deadline_s = 30.0
        cfg.drain_s = 3.0
        cfg.quiesce_max_s = 5.0
        cfg.abort_after_s = 3.0
        cfg.max_minutes = 5.0
    if args.url:
        cfg.url = args.url
        cfg.kafka_bootstrap = args.kafka_bootstrap or "127.0.0.1:19092"
    cfg.gateway_pid = args.gateway_pid
    if args.only:
        cfg.only = args.only
    for attr, value in (
        ("results_dir", args.results_dir),
        ("max_minutes", args.max_minutes),
        ("latency_rates", args.latency_rates),
        ("latency_duration_s", args.latency_duration),
        ("pairs", args.pairs),
        ("group_size", args.group_size),
        ("throughput_rates", args.throughput_rates),
        ("step_s", args.step_seconds),
        ("throughput_pairs", args.throughput_pairs),
        ("conn_levels", args.conn_levels),
        ("sockets_per_user", args.sockets_per_user),
        ("workers", args.workers),
        ("storm_clients", args.storm_clients),
        ("signup_concurrency", args.signup_concurrency),
    ):
        if value is not None:
            setattr(cfg, attr, value)
    if args.with_5k and 5000.0 not in cfg.latency_rates:
        cfg.latency_rates = [*cfg.latency_rates, 5000.0]
    cfg.keep_data = args.keep_data
    cfg.restart = not cfg.quick if args.restart is None else bool(args.restart)
    cfg.verbose = args.verbose
    if not 2 <= cfg.group_size <= 100:
        parser.error("--group-size must be 2..100")
    if min(cfg.pairs, cfg.throughput_pairs, cfg.sockets_per_user, cfg.workers) < 1:
        parser.error("counts must be positive")
    cfg.conn_levels = sorted(set(cfg.conn_levels))
    return cfg
