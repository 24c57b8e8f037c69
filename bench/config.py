"""The bench's options and the sizes of each scenario: one dataclass, from which the command
line is derived (each field's `typer.Option` names and explains it), and the `--quick` sizes."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import typer

SCENARIOS = ("floor", "connections", "storm", "latency", "throughput", "soak", "presence")
"""Run order. Memory per connection is measured first, on a gateway that has not yet carried
the latency and throughput load (whose freed heap would hide the cost of new sockets). The soak
runs on topics and tables the scenarios before it filled. Presence comes last: its event flood
leaves the processor tracking sockets that never existed."""


class Numbers(list[float]):
    """A comma-separated list of positive numbers on the command line (`--latency-rates 100,1000`):
    a type of its own, since typer reads a `list` option as a repeated one."""

    @classmethod
    def parse(cls, text: str | list[float]) -> Numbers:
        if isinstance(text, list):  # a default, already parsed
            return cls(text)
        try:
            numbers = cls(float(x) for x in text.split(",") if x.strip())
        except ValueError:
            raise typer.BadParameter(f"not a list of numbers: {text!r}") from None
        if not numbers or min(numbers) <= 0:
            raise typer.BadParameter(f"not a list of positive numbers: {text!r}")
        return numbers


class Counts(list[int]):
    """A comma-separated list of positive whole numbers (`--conn-levels 1000,5000`)."""

    @classmethod
    def parse(cls, text: str | list[int]) -> Counts:
        if isinstance(text, list):
            return cls(text)
        try:
            return cls(int(n) for n in Numbers.parse(text))
        except ValueError:
            raise typer.BadParameter(f"not a list of whole numbers: {text!r}") from None


class Names(list[str]):
    """A comma-separated subset of SCENARIOS, kept in run order."""

    @classmethod
    def parse(cls, text: str | list[str]) -> Names:
        names = text if isinstance(text, list) else [x.strip() for x in text.split(",")]
        unknown = [n for n in names if n and n not in SCENARIOS]
        if unknown:
            raise typer.BadParameter(
                f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
            )
        return cls(s for s in SCENARIOS if s in names)


def _numbers(name: str, help: str, kind: type[Numbers | Counts] = Numbers) -> Any:
    return typer.Option(name, parser=kind.parse, metavar="N,N,…", help=help)


QUICK: dict[str, Any] = {
    "latency_rates": [100.0, 300.0],
    "latency_duration_s": 3.0,
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
    url: Annotated[
        str | None,
        typer.Option(help="Benchmark the running stack at this http://127.0.0.1:PORT."),
    ] = None
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(help="With --url: the broker for the floor and presence [127.0.0.1:19092]."),
    ] = None
    gateway_pid: Annotated[
        int | None, typer.Option(help="With --url: the gateway process to measure RSS of.")
    ] = None
    only: Annotated[
        Names,
        typer.Option(parser=Names.parse, metavar="A,B,…", help="A subset of the scenarios."),
    ] = field(default_factory=lambda: Names(SCENARIOS))
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            is_eager=True,
            callback=_quick,
            help="Small counts (~5 minutes): a smoke test.",
        ),
    ] = False
    results_dir: Annotated[Path, typer.Option(help="Where the results go.")] = Path("bench/results")
    keep_data: Annotated[bool, typer.Option("--keep-data", help="Keep the temp data dir.")] = False
    verbose: Annotated[bool, typer.Option("--verbose", help="Echo the parley dev output.")] = False
    max_minutes: Annotated[
        float, typer.Option(help="Skip the scenarios that would start later than this.")
    ] = 15.0
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Run parley dev on this data dir (kept), and keep the bench's accounts in it "
            "for later runs on the same dir."
        ),
    ] = None
    message_store: Annotated[
        Literal["postgres", "scylla"],
        typer.Option(help="The store parley dev runs with (scylla: on an embedded Cassandra)."),
    ] = "postgres"
    signup_concurrency: Annotated[int, typer.Option(min=1, help="Parallel signups.")] = 2
    # Latency, and the floor at the same rates.
    latency_rates: Annotated[
        Numbers, _numbers("--latency-rates", "Msgs/s of the latency runs.")
    ] = field(default_factory=lambda: Numbers([100.0, 1000.0]))
    with_5k: Annotated[
        bool, typer.Option("--with-5k", help="Also measure latency (and the floor) at 5,000/s.")
    ] = False
    latency_duration_s: Annotated[
        float, typer.Option("--latency-duration", help="Seconds per latency run.")
    ] = 10.0
    floor_partitions: Annotated[
        int,
        typer.Option(
            min=1, help="Partitions of the floor's topic (as PARLEY_MESSAGES_PARTITIONS)."
        ),
    ] = 8
    floor_transactions: Annotated[
        bool, typer.Option(help="Also measure the floor with a transaction per batch.")
    ] = True
    floor_txn_retry_ms: Annotated[
        float | None,
        typer.Option(
            help="Set aiokafka's fixed 20 ms wait before it retries a transaction the broker "
            "still commits (CONCURRENT_TRANSACTIONS), for the transactional floor."
        ),
    ] = None
    depth_probe: Annotated[
        bool, typer.Option(help="After the floor, check that a deep partition is served promptly.")
    ] = True
    pairs: Annotated[int, typer.Option(min=1, help="1:1 pairs of the latency runs.")] = 10
    group_size: Annotated[
        int, typer.Option(min=2, max=100, help="Members of the latency and throughput groups.")
    ] = 100
    # Throughput.
    throughput_rates: Annotated[
        Numbers, _numbers("--throughput-rates", "Msgs/s of the 1:1 throughput steps.")
    ] = field(default_factory=lambda: Numbers([100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0]))
    group_throughput_rates: Annotated[
        Numbers,
        _numbers("--group-throughput-rates", "Msgs/s of the group steps (each to every member)."),
    ] = field(default_factory=lambda: Numbers([10.0, 20.0, 30.0, 50.0, 75.0, 100.0]))
    step_s: Annotated[
        float, typer.Option("--step-seconds", help="Seconds per throughput step.")
    ] = 10.0
    throughput_pairs: Annotated[int, typer.Option(min=1, help="1:1 pairs of the throughput.")] = 50
    p99_bound_ms: Annotated[
        float, typer.Option(help="The p99 within which a throughput step counts.")
    ] = 100.0
    # Soak.
    soak_messages: Annotated[
        int, typer.Option(min=1, help="Messages of the soak (40% in one channel).")
    ] = 50_000
    soak_rate: Annotated[float, typer.Option(min=0.001, help="Msgs/s of the soak.")] = 500.0
    soak_quiet_channels: Annotated[
        int, typer.Option(min=1, help="The soak's channels besides the busy one.")
    ] = 30
    # Connections and the reconnect storm.
    conn_levels: Annotated[
        Counts, _numbers("--conn-levels", "Idle sockets per memory level.", Counts)
    ] = field(default_factory=lambda: Counts([1000, 5000, 10000]))
    sockets_per_user: Annotated[
        int, typer.Option(min=1, help="Idle sockets sharing one device token.")
    ] = 40
    workers: Annotated[int, typer.Option(min=1, help="Client processes holding idle sockets.")] = 4
    connect_concurrency: Annotated[
        int, typer.Option(min=1, help="Sockets connecting at once, over all workers.")
    ] = 64
    storm_clients: Annotated[int, typer.Option(min=1, help="Clients of the reconnect storm.")] = (
        5000
    )
    storm_deadline_s: Annotated[
        float, typer.Option(help="Seconds the storm's clients have to sync.")
    ] = 60.0
    unread_per_channel: Annotated[
        int, typer.Option(min=0, help="Unread messages per idle user's ring channel.")
    ] = 3
    # Presence.
    presence_users: Annotated[int, typer.Option(min=1, help="Accounts of the presence runs.")] = 510
    presence_watch: Annotated[
        int, typer.Option(min=1, max=99, help="Users each presence socket watches.")
    ] = 50
    presence_sockets_per_user: Annotated[
        int, typer.Option(min=1, help="Sockets per presence account, watching the same users.")
    ] = 1
    presence_rates: Annotated[
        Numbers | None,
        _numbers(
            "--presence-rates", "Users taken offline and back per second, a step each [2.5%]."
        ),
    ] = None
    presence_step_s: Annotated[
        float, typer.Option("--presence-step-seconds", help="Seconds of closes per step.")
    ] = 30.0
    presence_timeout_s: Annotated[
        float, typer.Option("--presence-timeout", help="The stack's PARLEY_HEARTBEAT_TIMEOUT_S.")
    ] = 30.0
    presence_hold_s: Annotated[
        float, typer.Option("--presence-hold-seconds", help="Seconds of the idle presence hold.")
    ] = 20.0
    presence_flood_events: Annotated[
        int, typer.Option(min=1, help="Events produced straight to the topic for the ceiling.")
    ] = 200_000
    # Bounds.
    drain_s: Annotated[
        float, typer.Option("--drain-seconds", help="Wait for deliveries after each run.")
    ] = 5.0
    quiesce_max_s: Annotated[
        float, typer.Option("--quiesce-seconds", help="At most this wait for quiet between runs.")
    ] = 20.0
    abort_after_s: Annotated[
        float, typer.Option("--abort-after", help="Stop a run once a message is this late.")
    ] = 5.0

    def __post_init__(self) -> None:
        if self.url is not None:
            self.kafka_bootstrap = self.kafka_bootstrap or "127.0.0.1:19092"
        if self.with_5k and 5000.0 not in self.latency_rates:
            self.latency_rates = Numbers([*self.latency_rates, 5000.0])
        self.conn_levels = Counts(sorted(set(self.conn_levels)))

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

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
