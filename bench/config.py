"""The bench's options and the sizes of each scenario: one dataclass, from which the command
line is derived (each field's `typer.Option` names and explains it), and the `--quick` sizes."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import typer

SCENARIOS = (
    "floor",
    "connections",
    "storm",
    "latency",
    "throughput",
    "soak",
    "isolation",
    "presence",
    "search",
)
"""Run order. Memory per connection is measured first, on a gateway that has not yet carried
the latency and throughput load (whose freed heap would hide the cost of new sockets). The soak
runs on topics and tables the scenarios before it filled. Isolation comes after it, on users of
its own; the stack settles after its floods before the next scenario starts. Presence comes
last: its event flood leaves the processor tracking sockets that never existed. Search runs on
its own database for the bulk of its figures."""

CLUSTER_SCENARIOS = ("latency", "throughput")
"""What `--cluster` runs again on the cluster stack, after the single-node run."""


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


class Numbers(list[float]):
    """Positive numbers, comma-separated on the command line (`--latency-rates 100,1000`): a
    type of its own, since typer reads a `list` option as a repeated one."""

    @classmethod
    def parse(cls, text: str | list[float]) -> Numbers:
        try:  # a default comes already parsed
            numbers = cls(text if isinstance(text, list) else map(float, _split(text)))
        except ValueError:
            raise typer.BadParameter(f"not a list of numbers: {text!r}") from None
        if not numbers or min(numbers) <= 0:
            raise typer.BadParameter(f"not a list of positive numbers: {text!r}")
        return numbers


class Counts(list[int]):
    """Positive whole numbers, comma-separated (`--conn-levels 1000,5000`)."""

    @classmethod
    def parse(cls, text: str | list[int]) -> Counts:
        numbers = Numbers.parse(text if isinstance(text, str) else [float(n) for n in text])
        if any(n != int(n) for n in numbers):
            raise typer.BadParameter(f"not a list of whole numbers: {text!r}")
        return cls(int(n) for n in numbers)


class Names(list[str]):
    """A comma-separated subset of SCENARIOS, kept in run order."""

    @classmethod
    def parse(cls, text: str | list[str]) -> Names:
        names = text if isinstance(text, list) else _split(text)
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise typer.BadParameter(f"unknown {', '.join(unknown)}; choose from {SCENARIOS}")
        return cls(s for s in SCENARIOS if s in names)


def opt(help: str, *names: str, **options: Any) -> Any:
    """A `typer.Option`; a list type parses from comma-separated text."""
    return typer.Option(*names, help=help, **options)


def listed(help: str, kind: type[Numbers | Counts | Names], *names: str) -> Any:
    return typer.Option(*names, help=help, parser=kind.parse, metavar="A,B,…")


# The scenarios whose figures a cold broker (its JIT compiler) would change: the stack is warmed
# before the first of them.
WARMED = {"floor", "latency", "throughput", "soak", "search", "isolation"}

QUICK: dict[str, Any] = {
    "latency_rates": [100.0, 300.0],
    "latency_duration_s": 3.0,
    "warm_up_max_s": 0.0,
    "pairs": 3,
    "group_size": 10,
    "throughput_rates": [200.0, 500.0],
    "group_throughput_rates": [20.0, 50.0],
    "step_s": 3.0,
    "throughput_pairs": 5,
    "conn_levels": [200, 500],
    "sockets_per_user": 20,
    "workers": 2,
    "storm_clients": 500,
    "storm_deadline_s": 30.0,
    "drain_s": 3.0,
    "quiesce_max_s": 5.0,
    "abort_after_s": 3.0,
    "max_minutes": 5.0,
    "presence_users": 22,
    "presence_watch": 10,
    "presence_rates": [2.0],
    "presence_step_s": 5.0,
    "presence_hold_s": 5.0,
    "presence_flood_events": 20_000,
    "soak_messages": 2_000,
    "soak_rate": 200.0,
    "search_messages": 20_000,
    "search_lag_messages": 50,
    "search_queries": 20,
    "isolation_pairs": 4,
    "isolation_rate": 40.0,
    "isolation_seconds": 4.0,
    "isolation_huge_texts": 10,
    "isolation_searchers": 8,
    "isolation_seed_messages": 100,
}
"""What `--quick` changes: small counts that show the harness and the stack work end to end."""


def _quick(ctx: typer.Context, quick: bool) -> bool:
    # Eager, so it runs before the other options take their defaults: these become the
    # defaults, and options given on the command line still win.
    if quick:
        ctx.default_map = {**(ctx.default_map or {}), **QUICK}
    return quick


@dataclass
class Config:
    url: Annotated[str | None, opt("Benchmark the running stack at http://127.0.0.1:PORT.")] = None
    kafka_bootstrap: Annotated[
        str | None, opt("With --url: the broker, for the floor and presence [127.0.0.1:19092].")
    ] = None
    gateway_pid: Annotated[int | None, opt("With --url: the gateway to measure RSS of.")] = None
    only: Annotated[Names, listed("A subset of the scenarios.", Names)] = field(
        default_factory=lambda: Names(SCENARIOS)
    )
    quick: Annotated[
        bool, opt("Small counts (~5 minutes): a smoke test.", is_eager=True, callback=_quick)
    ] = False
    results_dir: Annotated[Path, opt("Where the results go.")] = Path("bench/results")
    keep_data: Annotated[bool, opt("Keep the temp data dir.", "--keep-data")] = False
    verbose: Annotated[bool, opt("Echo the parley dev output.", "--verbose")] = False
    max_minutes: Annotated[float, opt("Skip the scenarios that would start later.")] = 15.0
    data_dir: Annotated[
        Path | None, opt("Run parley dev on this dir (kept) and keep the accounts in it for reuse.")
    ] = None
    message_store: Annotated[
        Literal["postgres", "scylla"], opt("parley dev's store (scylla: an embedded Cassandra).")
    ] = "postgres"
    cluster: Annotated[
        bool,
        opt(
            "Then latency and throughput again on a cluster (3 Kafka brokers, replication 3; "
            "with scylla also 3 Cassandra nodes), reported beside the single-node figures.",
            "--cluster",
        ),
    ] = False
    signup_concurrency: Annotated[int, opt("Parallel signups.", min=1)] = 2
    # Latency, and the floor at the same rates.
    latency_rates: Annotated[Numbers, listed("Msgs/s of the latency runs.", Numbers)] = field(
        default_factory=lambda: Numbers([100.0, 1000.0])
    )
    with_5k: Annotated[bool, opt("Also latency (and the floor) at 5,000/s.", "--with-5k")] = False
    latency_duration_s: Annotated[float, opt("Seconds per run.", "--latency-duration")] = 10.0
    warm_up_max_s: Annotated[
        float,
        opt(
            "Before the scenarios, 1:1 load at 1,000/s in 10 s windows until the broker's CPU "
            "settles (its JIT compiler), for at most this long; 0: none.",
            "--warm-up-max",
        ),
    ] = 90.0
    floor_partitions: Annotated[int, opt("Of the floor's topic (as messages').", min=1)] = 8
    floor_client: Annotated[
        Literal["native", "python"],
        opt(
            "The Kafka floors' producer and consumer: native (bench/floorclient, Go, built by "
            "make bench; aiokafka when it is not built), which offers thousands of records a "
            "second without being the limit, or aiokafka in the bench's process (the "
            "transactional floor always is)."
        ),
    ] = "native"
    floor_transactions: Annotated[bool, opt("Also the floor with transactions.")] = True
    floor_txn_retry_ms: Annotated[
        float | None, opt("aiokafka's 20 ms wait before it retries a busy transaction.")
    ] = None
    floor_relays: Annotated[
        bool, opt("Also the two-hop floors (a bare relay, and one writing to Postgres).")
    ] = True
    floor_echo: Annotated[bool, opt("Also the WebSocket echo floor (the gateway's server).")] = True
    depth_probe: Annotated[bool, opt("Check that a deep partition is served promptly.")] = True
    pairs: Annotated[int, opt("1:1 pairs of the latency runs.", min=1)] = 10
    group_size: Annotated[int, opt("Members of the latency group.", min=2, max=100)] = 100
    # Throughput.
    throughput_rates: Annotated[Numbers, listed("Msgs/s of the 1:1 steps.", Numbers)] = field(
        default_factory=lambda: Numbers([100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0])
    )
    group_throughput_rates: Annotated[Numbers, listed("Msgs/s of the group steps.", Numbers)] = (
        field(
            default_factory=lambda: Numbers(
                [10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 305.0]
            )
        )
    )
    step_s: Annotated[float, opt("Seconds per throughput step.", "--step-seconds")] = 10.0
    throughput_pairs: Annotated[int, opt("1:1 pairs of the throughput steps.", min=1)] = 50
    p99_bound_ms: Annotated[float, opt("The p99 within which a step counts.")] = 100.0
    # Soak.
    soak_messages: Annotated[int, opt("Messages of the soak (40% in one channel).", min=1)] = 50_000
    soak_rate: Annotated[float, opt("Msgs/s of the soak.", min=0.001)] = 500.0
    soak_quiet_channels: Annotated[int, opt("The soak's other channels.", min=1)] = 30
    # Connections and the reconnect storm.
    conn_levels: Annotated[Counts, listed("Idle sockets per memory level.", Counts)] = field(
        default_factory=lambda: Counts([1000, 5000, 10000])
    )
    sockets_per_user: Annotated[int, opt("Idle sockets per device token.", min=1)] = 40
    workers: Annotated[int, opt("Client processes holding sockets.", min=1)] = 4
    connect_concurrency: Annotated[int, opt("Sockets connecting at once.", min=1)] = 64
    storm_clients: Annotated[int, opt("Clients of the reconnect storm.", min=1)] = 5000
    storm_deadline_s: Annotated[float, opt("Seconds the storm's clients have to sync.")] = 60.0
    unread_per_channel: Annotated[int, opt("Unread messages per ring channel.", min=0)] = 3
    # Presence.
    presence_users: Annotated[int, opt("Accounts of the presence runs.", min=1)] = 510
    presence_watch: Annotated[int, opt("Users each socket watches.", min=1, max=99)] = 50
    presence_sockets_per_user: Annotated[int, opt("Sockets per account.", min=1)] = 1
    presence_rates: Annotated[
        Numbers | None, listed("Users/s taken offline and back, a step each [2.5%].", Numbers)
    ] = None
    presence_step_s: Annotated[float, opt("Seconds of closes.", "--presence-step-seconds")] = 30.0
    presence_timeout_s: Annotated[
        float, opt("The stack's PARLEY_HEARTBEAT_TIMEOUT_S.", "--presence-timeout")
    ] = 30.0
    presence_hold_s: Annotated[float, opt("Idle hold.", "--presence-hold-seconds")] = 20.0
    presence_flood_events: Annotated[int, opt("Events straight to the topic.", min=1)] = 200_000
    # Search.
    search_messages: Annotated[int, opt("Messages bulk-loaded into the index.", min=1000)] = (
        1_000_000
    )
    search_member_channels: Annotated[
        int, opt("Channels (of 1,000 messages) the searching user is in.", min=1)
    ] = 50
    search_queries: Annotated[int, opt("Queries per kind.", min=1)] = 200
    search_lag_messages: Annotated[int, opt("Messages of the lag run.", min=1)] = 300
    search_lag_rate: Annotated[float, opt("Msgs/s of the lag run.", min=0.1)] = 20.0
    # Isolation.
    isolation_pairs: Annotated[int, opt("Unrelated 1:1 pairs of the steady traffic.", min=1)] = 10
    isolation_rate: Annotated[float, opt("Msgs/s of the steady traffic, in all.", min=0.1)] = 100.0
    isolation_seconds: Annotated[
        float, opt("Seconds of each phase (baseline, flood, after, search).", min=1.0)
    ] = 10.0
    isolation_huge_texts: Annotated[int, opt("Texts of 100,000 x U+FDFA in the flood.", min=1)] = 40
    isolation_searchers: Annotated[int, opt("Clients of the one searching user.", min=1)] = 32
    isolation_seed_messages: Annotated[
        int, opt("2,000-character messages the search flood matches.", min=1)
    ] = 300
    # Bounds.
    drain_s: Annotated[float, opt("Wait for deliveries after a run.", "--drain-seconds")] = 5.0
    quiesce_max_s: Annotated[float, opt("Wait for quiet.", "--quiesce-seconds")] = 20.0
    abort_after_s: Annotated[float, opt("Stop a run this late.", "--abort-after")] = 5.0

    def __post_init__(self) -> None:
        if self.url is not None and self.cluster:
            raise typer.BadParameter("--cluster starts its own stacks: not with --url")
        if self.url is not None:
            self.kafka_bootstrap = self.kafka_bootstrap or "127.0.0.1:19092"
        if self.with_5k and 5000.0 not in self.latency_rates:
            self.latency_rates = Numbers([*self.latency_rates, 5000.0])
        self.conn_levels = Counts(sorted(set(self.conn_levels)))

    def for_cluster(self) -> Config | None:
        """The `--cluster` run: the selected latency and throughput scenarios, the same sizes,
        on a stack of its own (never on `--data-dir`'s); None if neither is selected."""
        only = Names(name for name in self.only if name in CLUSTER_SCENARIOS)
        return replace(self, only=only, data_dir=None) if only else None

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def warms_stack(self) -> bool:
        """Whether the stack is warmed before the scenarios (bench/scenarios/warm.py): for
        those whose figures a cold broker would change."""
        return self.warm_up_max_s > 0 and bool(WARMED & set(self.only))

    def users_needed(self) -> int:
        need = [2, self.soak_offset(), self.conn_users()]
        if self.warms_stack():
            need.append(2 * self.pairs)
        if "soak" in self.only:
            need.append(self.soak_offset() + 2 * (self.soak_quiet_channels + 1))
        if "presence" in self.only:
            need.append(self.presence_group_count() * self.presence_group_size())
        if "isolation" in self.only:
            need.append(self.isolation_offset() + 2 * self.isolation_pairs + 4)
        return max(need)

    def isolation_offset(self) -> int:
        """The isolation scenario's users come after the soak's and the presence users: none of
        them has a backlog of an earlier scenario, nor a channel with another scenario's
        users."""
        soak = 2 * (self.soak_quiet_channels + 1) if "soak" in self.only else 0
        presence = (
            self.presence_group_count() * self.presence_group_size()
            if "presence" in self.only
            else 0
        )
        return max(self.soak_offset() + soak, presence)

    def presence_group_size(self) -> int:
        """Each watcher shares one group with the users it watches (≤ 100 members)."""
        return self.presence_watch + 1

    def presence_group_count(self) -> int:
        return max(self.presence_users // self.presence_group_size(), 1)

    def presence_sockets(self) -> int:
        return (
            self.presence_group_count()
            * self.presence_group_size()
            * self.presence_sockets_per_user
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
        latency = max(2 * self.pairs, self.group_size) if "latency" in self.only else 0
        if "throughput" not in self.only:
            return latency
        return max(
            latency, self.throughput_offset() + max(2 * self.throughput_pairs, self.group_size)
        )

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


def command(run: Callable[[Config], None]) -> Callable[..., None]:
    """A typer command whose options are Config's fields, calling `run` with the Config."""
    hints = get_type_hints(Config, include_extras=True)
    options = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=f.default_factory() if callable(f.default_factory) else f.default,
            annotation=hints[f.name],
        )
        for f in fields(Config)
    ]

    def bench(**values: Any) -> None:
        """Parley's benchmarks (SPEC §6): latency, throughput, idle connection memory, the
        reconnect storm, the soak, the broker floor, and presence (issue #4). Only against
        127.0.0.1."""
        run(Config(**values))

    # typer reads the parameters from the signature: these are the options.
    bench.__signature__ = inspect.Signature(options)  # type: ignore[attr-defined]
    return bench
