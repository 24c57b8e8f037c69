"""Command-line options and the sizes of each scenario (default run and `--quick`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = ("floor", "connections", "storm", "latency", "throughput", "soak", "presence")
"""Run order. Memory per connection is measured first, on a gateway that has not yet carried
the latency and throughput load (whose freed heap would hide the cost of new sockets). The soak
runs on topics and tables the scenarios before it filled. Presence comes last: its event flood
leaves the processor tracking sockets that never existed."""


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
    verbose: bool = False
    max_minutes: float = 15.0
    data_dir: Path | None = None
    message_store: str = "postgres"
    """`parley dev --message-store`: postgres, or scylla (on an embedded Cassandra)."""
    signup_concurrency: int = 2
    # Latency (and the floor, at the same rates).
    latency_rates: list[float] = field(default_factory=lambda: [100.0, 1000.0])
    latency_duration_s: float = 10.0
    floor_partitions: int = 8
    """The floor's topic is spread like the messages topic (PARLEY_MESSAGES_PARTITIONS)."""
    floor_transactions: bool = True
    """Also measure the floor with a transactional producer and a read_committed consumer."""
    floor_txn_retry_ms: float | None = None
    """aiokafka's retry after CONCURRENT_TRANSACTIONS (None: its own 20 ms)."""
    depth_probe: bool = True
    pairs: int = 10
    group_size: int = 100
    # Throughput.
    throughput_rates: list[float] = field(
        default_factory=lambda: [100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0]
    )
    group_throughput_rates: list[float] = field(
        default_factory=lambda: [10.0, 20.0, 30.0, 50.0, 75.0, 100.0]
    )
    """Messages/s sent into the throughput group; each is delivered to every other member."""
    step_s: float = 10.0
    throughput_pairs: int = 50
    p99_bound_ms: float = 100.0
    # Soak.
    soak_messages: int = 50_000
    soak_rate: float = 500.0
    soak_quiet_channels: int = 30
    # Connections and the reconnect storm.
    conn_levels: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    sockets_per_user: int = 40
    workers: int = 4
    connect_concurrency: int = 64
    storm_clients: int = 5000
    storm_deadline_s: float = 60.0
    unread_per_channel: int = 3
    # Presence.
    presence_users: int = 510
    presence_watch: int = 50
    presence_sockets_per_user: int = 1
    presence_rates: list[float] | None = None
    """Users taken offline (and back) per second, one step each; None: 2.5% of them."""
    presence_step_s: float = 30.0
    presence_timeout_s: float = 30.0
    presence_hold_s: float = 20.0
    presence_flood_events: int = 200_000
    # Bounds.
    drain_s: float = 5.0
    quiesce_max_s: float = 20.0
    abort_after_s: float = 5.0

    def users_needed(self) -> int:
        need = 2
        if "latency" in self.only:
            need = max(need, 2 * self.pairs, self.group_size)
        if "throughput" in self.only:
            need = max(
                need,
                self.throughput_offset() + max(2 * self.throughput_pairs, self.group_size),
            )
        need = max(need, self.conn_users())
        if "soak" in self.only:
            need = max(need, self.soak_offset() + 2 * (self.soak_quiet_channels + 1))
        if "presence" in self.only:
            need = max(need, self.presence_group_count() * self.presence_group_size())
        return need

    def presence_group_size(self) -> int:
        """Each watcher shares one group with the users it watches (≤ 100 members)."""
        return self.presence_watch + 1

    def presence_group_count(self) -> int:
        return max(self.presence_users // self.presence_group_size(), 1)

    def presence_sockets(self) -> int:
        return (
            self.presence_group_count()
            * self.presence_group_size()
            * (self.presence_sockets_per_user)
        )

    def presence_connect_s(self) -> float:
        """A bound on connecting and subscribing every presence socket (about 40/s on a busy
        box: each one syncs, and its subscribe reads Postgres twice)."""
        return 120 + self.presence_sockets() / 15

    def presence_step_rates(self) -> list[float]:
        if self.presence_rates:
            return self.presence_rates
        n = self.presence_group_count() * self.presence_group_size()
        return [max(n * 0.025, 2.0)]

    def throughput_offset(self) -> int:
        """Throughput pairs are users other than the latency group's members, so a backlog
        left by a saturated group run does not land on their sockets."""
        return self.group_size if "latency" in self.only else 0

    def soak_offset(self) -> int:
        """The soak's users come after the latency and throughput users: no backlog of theirs
        reaches the soak's sockets."""
        base = 0
        if "latency" in self.only:
            base = max(2 * self.pairs, self.group_size)
        if "throughput" in self.only:
            base = self.throughput_offset() + max(2 * self.throughput_pairs, self.group_size)
        return base

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
        "reconnect storm, the broker floor, and presence (issue #4). Only against 127.0.0.1.",
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
        "--quick", action="store_true", help="small counts (~3 minutes): a smoke test"
    )
    parser.add_argument("--results-dir", type=Path, help="default bench/results")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="run parley dev on this data dir (kept) and keep the bench's accounts in it, so a "
        "later run on the same dir reuses them instead of signing up again",
    )
    parser.add_argument(
        "--message-store",
        choices=("postgres", "scylla"),
        help="the store parley dev runs with (scylla: on an embedded Cassandra; default postgres)",
    )
    parser.add_argument("--verbose", action="store_true", help="echo the parley dev output")
    parser.add_argument("--max-minutes", type=float, help="skip scenarios that would start later")
    parser.add_argument("--latency-rates", type=_rates, help="msgs/s, default 100,1000")
    parser.add_argument(
        "--with-5k", action="store_true", help="also measure latency (and the floor) at 5,000/s"
    )
    parser.add_argument(
        "--floor-partitions", type=int, help="partitions of the floor's topic, default 8"
    )
    parser.add_argument(
        "--floor-transactions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the floor with a transaction per batch, read_committed (default on)",
    )
    parser.add_argument(
        "--floor-txn-retry-ms",
        type=float,
        help="set aiokafka's fixed 20 ms wait before it retries a transaction the broker still "
        "commits (CONCURRENT_TRANSACTIONS), for the transactional floor",
    )
    parser.add_argument(
        "--depth-probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the floor, check that a partition of 20,000 batches is served promptly",
    )
    parser.add_argument("--latency-duration", type=float, help="seconds per latency run")
    parser.add_argument("--pairs", type=int, help="1:1 pairs in the latency scenario")
    parser.add_argument("--group-size", type=int, help="members of the latency group (≤ 100)")
    parser.add_argument("--throughput-rates", type=_rates, help="offered msgs/s per step")
    parser.add_argument(
        "--group-throughput-rates",
        type=_rates,
        help="msgs/s per step into the throughput group (each delivered to every other member)",
    )
    parser.add_argument("--step-seconds", type=float, help="seconds per throughput step")
    parser.add_argument("--throughput-pairs", type=int, help="1:1 pairs in the throughput scenario")
    parser.add_argument(
        "--soak-messages",
        type=int,
        help="messages in the soak (default 50,000; 40%% in one channel)",
    )
    parser.add_argument("--soak-rate", type=float, help="msgs/s of the soak (default 500)")
    parser.add_argument("--conn-levels", type=_ints, help="idle sockets, default 1000,5000,10000")
    parser.add_argument("--sockets-per-user", type=int, help="sockets sharing one device token")
    parser.add_argument("--workers", type=int, help="client processes holding idle sockets")
    parser.add_argument("--storm-clients", type=int, help="clients in the reconnect storm")
    parser.add_argument("--signup-concurrency", type=int, help="parallel signups/logins")
    parser.add_argument(
        "--presence-users", type=int, help="accounts in the presence scenario (default 510)"
    )
    parser.add_argument(
        "--presence-watch", type=int, help="users each presence socket watches (≤ 99; 50)"
    )
    parser.add_argument(
        "--presence-sockets-per-user",
        type=int,
        help="sockets per presence account, all watching the same users (default 1)",
    )
    parser.add_argument(
        "--presence-rates", type=_rates, help="users taken offline and back per second, per step"
    )
    parser.add_argument("--presence-step-seconds", type=float, help="seconds of closes per step")
    parser.add_argument(
        "--presence-timeout",
        type=float,
        help="the stack's PARLEY_HEARTBEAT_TIMEOUT_S (default 30, the server default)",
    )
    parser.add_argument(
        "--presence-flood-events",
        type=int,
        help="presence events produced straight to the topic to find the processor's ceiling",
    )
    args = parser.parse_args(argv)

    cfg = Config()
    if args.quick:
        cfg.quick = True
        cfg.latency_rates = [100.0, 300.0]
        cfg.latency_duration_s = 3.0
        cfg.pairs = 3
        cfg.group_size = 10
        cfg.throughput_rates = [200.0, 500.0]
        cfg.group_throughput_rates = [20.0, 50.0]
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
        cfg.presence_users = 22
        cfg.presence_watch = 10
        cfg.presence_rates = [2.0]
        cfg.presence_step_s = 5.0
        cfg.presence_hold_s = 5.0
        cfg.presence_flood_events = 20_000
        cfg.soak_messages = 2_000
        cfg.soak_rate = 200.0
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
        ("floor_partitions", args.floor_partitions),
        ("floor_txn_retry_ms", args.floor_txn_retry_ms),
        ("pairs", args.pairs),
        ("group_size", args.group_size),
        ("throughput_rates", args.throughput_rates),
        ("group_throughput_rates", args.group_throughput_rates),
        ("step_s", args.step_seconds),
        ("throughput_pairs", args.throughput_pairs),
        ("conn_levels", args.conn_levels),
        ("sockets_per_user", args.sockets_per_user),
        ("workers", args.workers),
        ("storm_clients", args.storm_clients),
        ("signup_concurrency", args.signup_concurrency),
        ("data_dir", args.data_dir),
        ("message_store", args.message_store),
        ("soak_messages", args.soak_messages),
        ("soak_rate", args.soak_rate),
        ("presence_users", args.presence_users),
        ("presence_watch", args.presence_watch),
        ("presence_sockets_per_user", args.presence_sockets_per_user),
        ("presence_rates", args.presence_rates),
        ("presence_step_s", args.presence_step_seconds),
        ("presence_timeout_s", args.presence_timeout),
        ("presence_flood_events", args.presence_flood_events),
    ):
        if value is not None:
            setattr(cfg, attr, value)
    if args.with_5k and 5000.0 not in cfg.latency_rates:
        cfg.latency_rates = [*cfg.latency_rates, 5000.0]
    cfg.keep_data = args.keep_data
    cfg.floor_transactions = bool(args.floor_transactions)
    cfg.depth_probe = bool(args.depth_probe)
    cfg.verbose = args.verbose
    if not 2 <= cfg.group_size <= 100:
        parser.error("--group-size must be 2..100")
    if min(cfg.pairs, cfg.throughput_pairs, cfg.sockets_per_user, cfg.workers) < 1:
        parser.error("counts must be positive")
    if not 1 <= cfg.presence_watch <= 99:
        parser.error("--presence-watch must be 1..99 (a group holds at most 100)")
    if cfg.soak_messages < 1 or cfg.soak_rate <= 0:
        parser.error("the soak's messages and rate must be positive")
    if min(cfg.presence_users, cfg.presence_sockets_per_user, cfg.presence_flood_events) < 1:
        parser.error("presence counts must be positive")
    cfg.conn_levels = sorted(set(cfg.conn_levels))
    return cfg
