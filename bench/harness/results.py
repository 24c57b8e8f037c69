"""The results of a run, as typed records: what `<ts>.json` holds (orjson writes dataclasses as
objects) and what the report reads. Each scenario puts its record in `Results` when it starts and
fills it as it goes, so one cut short by its time bound still leaves what it measured."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

from bench.harness.cpu import Cost, Used
from bench.harness.histograms import NO_SAMPLES, Cdf, Summary
from bench.harness.logs import LogScan

# --- shared ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratios:
    """A latency summary as multiples of another (the floor's) at the same rate."""

    p50: float | None
    p90: float | None
    p99: float | None
    p99_9: float | None
    max: float | None

    @classmethod
    def of(cls, mine: Summary, base: Summary) -> Self:
        def ratio(key: str) -> float | None:
            a, b = getattr(mine, key), getattr(base, key)
            return round(a / b, 2) if a is not None and b else None

        return cls(*(ratio(key) for key in ("p50", "p90", "p99", "p99_9", "max")))


@dataclass(frozen=True)
class FloorRatios(Ratios):
    floor_rate: float = 0.0
    floor_lost: int = 0


@dataclass
class Connects:
    """Attempts to connect and sync: sockets opened, those that never synced (out of attempts
    or past the deadline), retries, and failures by kind with the first of each as evidence."""

    opened: int = 0
    failed: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settle:
    """The wait for the stack to be back near idle before a run."""

    settle_s: float
    settled: bool
    busy_cores: float | None = None


@dataclass(frozen=True)
class WarmWindow:
    """A window of the stack's warm-up (bench/scenarios/warm.py): its 1:1 p99 and the cores
    each role used."""

    p99_ms: float | None
    cores: dict[str, float]

    @property
    def broker_cores(self) -> float:
        return self.cores.get("broker", 0.0)


# The warm-up's 1:1 load (bench/scenarios/warm.py), its windows, and when it has settled: a
# window's broker CPU fell by less than `SETTLED_DROP` from the window before.
WARM_RATE = 1000.0
WARM_WINDOW_S = 10.0
SETTLED_DROP = 0.1


def warm_settled(windows: list[WarmWindow]) -> bool:
    """Whether the last window's broker CPU fell by less than `SETTLED_DROP` from the one
    before it."""
    if len(windows) < 2:
        return False
    return windows[-1].broker_cores >= windows[-2].broker_cores * (1 - SETTLED_DROP)


@dataclass(frozen=True)
class AfterRun:
    """Between runs: the wait for quiet and for the stack to settle, and sockets reopened."""

    quiesce_s: float
    settle: Settle
    reconnected: int


@dataclass
class Paced:
    """A paced run of sends (at `offered_per_s`, each latency from its intended send time):
    what went out, and what never came back."""

    scenario: str
    offered_per_s: float
    sent: int = 0
    send_window_s: float = 0.0
    send_failed: int = 0
    """Sends that could not go out (the floor: produce errors)."""
    missing: int = 0
    aborted: str | None = None
    latency_ms: Summary = NO_SAMPLES
    send_lag_ms: Summary = NO_SAMPLES
    cdf_ms: Cdf | None = None

    @property
    def lost(self) -> int:
        return self.missing + self.send_failed


@dataclass
class LoadRow(Paced):
    """One paced run of sends through Parley (a latency run, a throughput step, the soak) and
    what it delivered; the tracker fills its counts as frames arrive."""

    expected_deliveries: int = 0
    delivered: int = 0
    unaccepted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    delivered_per_s: float | None = None
    accept_latency_ms: Summary = NO_SAMPLES
    drain_s: float = 0.0
    client_cpu_pct: float = 0.0
    cpu: Cost | None = None
    after: AfterRun | None = None
    offered_deliveries_per_s: float | None = None
    within_bound: bool | None = None
    ratio_to_floor: FloorRatios | None = None
    """To the one-hop floor at the nearest rate."""
    ratio_to_durable_floor: FloorRatios | None = None
    """To the durable two-hop floor at the nearest rate: what SPEC §6's 1:1 target reads."""


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relayed:
    """What a two-hop floor's relay did during a run: its batches, and per batch the time of
    the one database statement (the durable relay) and of the re-produce until acked."""

    batches: int
    records: int
    records_per_batch_mean: float | None
    records_per_batch_max: int | None
    write_ms: Summary | None
    produce_ms: Summary


@dataclass
class FloorRun(Paced):
    producer: str = ""
    transactions: int | None = None
    records_per_transaction_mean: float | None = None
    records_per_transaction_max: int | None = None
    transaction_ms: Summary | None = None
    ratio_to_idempotent_floor: Ratios | None = None
    relay: Relayed | None = None
    cpu: Cost | None = None
    """Cores by process during the run (the bench's client and the relay count as `bench`)."""


@dataclass(frozen=True)
class DepthStep:
    records: int
    produce_step_s: float
    single_record_produces_per_s: int | None
    fetch_newest_s: float | None
    fetch_oldest_s: float | None


@dataclass
class DepthProbe:
    writers: int
    fetch_timeout_s: float
    steps: list[DepthStep] = field(default_factory=list)
    fetch_failed_at_records: int | None = None


@dataclass
class FloorResults:
    runs: list[FloorRun] = field(default_factory=list)
    """One Kafka hop (idempotent producer -> consumer)."""
    transactional_runs: list[FloorRun] = field(default_factory=list)
    two_hop_runs: list[FloorRun] = field(default_factory=list)
    """Producer -> topic A -> bare relay -> topic B -> consumer."""
    durable_runs: list[FloorRun] = field(default_factory=list)
    """As two_hop_runs, the relay writing each batch to Postgres first."""
    echo_runs: list[FloorRun] = field(default_factory=list)
    """A WebSocket echo through the gateway's server stack."""
    bootstrap: str | None = None
    client: str = ""
    """Who sends and reads the Kafka floors' records (the transactional floor's: aiokafka)."""
    partitions: int = 0
    fetch_max_wait_ms: int = 0
    txn_retry_ms: float | None = None
    depth_probe: DepthProbe | None = None
    error: str | None = None


@dataclass
class LatencyResults:
    pairs: int
    group_size: int
    runs: list[LoadRow] = field(default_factory=list)
    warm_up: dict[str, LoadRow] = field(default_factory=dict)


@dataclass
class Curve:
    kind: str
    deliveries_per_message: int
    warm_up: LoadRow
    steps: list[LoadRow] = field(default_factory=list)
    skipped_rates: list[float] = field(default_factory=list)
    max_delivered_per_s_within_bound: float = 0.0
    stopped_because: str | None = None


@dataclass
class ThroughputResults:
    p99_bound_ms: float
    step_s: float
    max_delivered_per_s_within_bound: float = 0.0
    curves: list[Curve] = field(default_factory=list)


@dataclass(frozen=True)
class Baseline:
    rss_bytes: int | None
    healthz_connections: int | None


@dataclass(frozen=True)
class Level:
    level: int
    held: int
    connects: Connects
    """Of the sockets opened to reach this level."""
    client_closes: dict[str, int]
    connect_and_sync_s: Summary
    elapsed_s: float
    healthz_connections: int | None
    rss_before_bytes: int | None
    rss_bytes: int | None
    kib_per_connection: float | None
    marginal_kib_per_connection: float | None


@dataclass
class ConnectionResults:
    sockets_per_user: int
    gateway_pid: int | None = None
    gateway_nofile_limit: list[int] | None = None
    baseline: Baseline | None = None
    levels: list[Level] = field(default_factory=list)


@dataclass(frozen=True)
class Reconnect:
    """The storm itself: every client reconnecting at once."""

    connects: Connects
    all_synced: bool
    all_synced_s: float | None
    time_to_synced_s: Summary
    expected_sync_messages: list[int]
    sync_messages_min: int | None
    sync_messages_max: int | None
    sync_count_wrong: int
    healthz_after: int | None


@dataclass
class StormResults:
    clients: int
    deadline_s: float
    connected_before: int = 0
    connect: Connects | None = None
    healthz_before: int | None = None
    drop_s: float = 0.0
    dropped: int = 0
    reconnect: Reconnect | None = None


@dataclass(frozen=True)
class SoakWindow:
    window: int
    deliveries: int
    p50: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class Drift:
    p50_first_ms: float | None
    p50_last_ms: float | None
    p50_ratio: float | None
    p99_first_ms: float | None
    p99_last_ms: float | None
    p99_ratio: float | None
    no_drift: bool


@dataclass(frozen=True)
class TableSize:
    rows: int
    total_bytes: int
    heap_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class StorageCost:
    messages_stored: int
    tables: dict[str, TableSize]
    bytes_per_message: dict[str, float] | None


@dataclass
class SoakResults:
    messages: int
    rate: float
    quiet_channels: int
    text_chars: int
    run: LoadRow | None = None
    busy_channel_sends: int = 0
    order_violations: int = 0
    windows: list[SoakWindow] = field(default_factory=list)
    drift: Drift | None = None
    postgres: StorageCost | None = None


@dataclass(frozen=True)
class QueryRow:
    """One kind of search query, run `count` times against the bulk-loaded index."""

    who: str
    kind: str
    visible_messages: int
    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_hits: float
    too_costly: int


@dataclass
class SearchResults:
    lag_messages: int
    lag_rate: float
    indexed_messages: int
    lag_ms: Summary = NO_SAMPLES
    """Send -> found by GET /v1/search, through the live stack."""
    lag_missing: int = 0
    load_s: float | None = None
    load_msgs_per_s: float | None = None
    index_bytes_per_message: float | None = None
    queries: list[QueryRow] = field(default_factory=list)


@dataclass
class IsolationPhase:
    """The unrelated pairs' steady traffic during one phase of the isolation scenario: what
    was sent, what arrived (exactly once, in order), its latency, and the CPU by process."""

    phase: str
    offered_per_s: float
    seconds: float
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    """Sent and not delivered by the end of the drain (or refused)."""
    received: int = 0
    """Sends the receivers' sockets saw at least once, counted by client_msg_id (late ones
    included): a check on `delivered`, which the tracker counts."""
    duplicates: int = 0
    """Deliveries of a message to its receiver beyond the first."""
    out_of_order: int = 0
    """Deliveries that came after a later send of the same channel."""
    latency_ms: Summary = NO_SAMPLES
    accept_ms: Summary = NO_SAMPLES
    """From each send's intended time to its `accepted`: the first hop (gateway and broker),
    the rest of `latency_ms` being the processor and the second hop."""
    send_lag_ms: Summary = NO_SAMPLES
    aborted: str | None = None
    cpu_cores: dict[str, float] = field(default_factory=dict)
    """Cores by role over the phase (`bench` is the load generator: the pairs, the flood and
    the searchers), `other` and `machine`."""


@dataclass
class HugeTextFlood:
    """One user's texts of 100,000 x U+FDFA (1.8M characters under NFKC), as fast as the send
    limit allows, to a receiver of its own."""

    texts: int
    text_chars: int
    nfkc_chars: int
    frame_bytes: int
    rate_per_s: float
    burst: int
    sends: int = 0
    """Send frames written, resends included."""
    rate_limited: int = 0
    """`rate_limited` answers, each followed by a resend with the same client_msg_id."""
    errors: Counter[str] = field(default_factory=Counter)
    sends_done_s: float | None = None
    """From the first send to the last one written (seconds)."""
    all_accepted_s: float | None = None
    all_delivered_s: float | None = None
    """From the first send to the last text's arrival at the receiver."""
    delivered: int = 0
    """Texts that reached the receiver at least once."""
    duplicates: int = 0
    out_of_order: int = 0
    wrong_text: int = 0
    """Delivered with a text other than the one sent."""
    latency_ms: Summary = NO_SAMPLES
    """Each text's first send -> its arrival at the receiver."""
    closes: dict[str, int] = field(default_factory=dict)


@dataclass
class SearchFlood:
    """`clients` concurrent clients of one user searching in a loop over long matching
    messages."""

    clients: int
    seconds: float
    query: str
    limit: int
    seeded: int
    seed_chars: int
    seed_s: float | None = None
    """Seeding, until the last seeded message was searchable."""
    queries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latency_ms: Summary = NO_SAMPLES
    ok_latency_ms: Summary = NO_SAMPLES
    """Of the 200 answers."""
    results_per_answer: float | None = None
    kib_per_answer: float | None = None
    answers_per_s: float | None = None
    elapsed_s: float | None = None
    """Until the last answer: searches asked before the end of `seconds` are waited for."""
    alone_ms: Summary = NO_SAMPLES
    """The same search asked one at a time, before the baseline: one answer unqueued."""
    alone_statuses: Counter[str] = field(default_factory=Counter)
    cpu_ms_per_answer: dict[str, float] = field(default_factory=dict)
    """CPU ms per answer by process of the stack, from the search flood's start to its last
    answer, net of each process's cores in the baseline phase."""


@dataclass
class IsolationResults:
    pairs: int
    rate: float
    phase_s: float
    bound_ms: float
    phases: list[IsolationPhase] = field(default_factory=list)
    flood: HugeTextFlood | None = None
    search: SearchFlood | None = None
    warm_up: LoadRow | None = None


@dataclass(frozen=True)
class ProcessorWindow:
    """Presence events the processor handled and changes it decided between two moments, and
    the CPU used meanwhile (cores, by role; `other` is the rest of the machine)."""

    seconds: float
    events_handled: int
    events_per_s: float
    lag_after: int
    changes: int | None
    changes_per_s: float | None
    cpu_cores: dict[str, float]
    loadavg_1m: float


@dataclass(frozen=True)
class Subscribed:
    snapshot_frames: int
    expected: int
    seconds: float
    error_frames: dict[str, int]


@dataclass(frozen=True)
class PresenceConnect:
    held: int
    connects: Connects
    subscribed: Subscribed
    processor: ProcessorWindow


@dataclass(frozen=True)
class ChurnStep:
    users_per_s: float
    churned_users: int
    changes_scheduled: int
    notifications: int
    notifications_per_s_series: list[int]
    steady_window_s: tuple[int, int]
    notifications_per_s_nominal: float
    """Every watcher of a churned user connected: an upper bound for the steady rate."""
    notifications_per_s_steady: float | None
    notifications_per_s_peak: int
    offline_after_timeout_ms: Summary
    online_after_reconnect_ms: Summary
    unscheduled_changes: int
    steady_watchers_received: int
    steady_watchers_expected: int
    reconnects: Connects
    held_after: int
    processor: ProcessorWindow
    cdf_ms: dict[str, Cdf]


@dataclass(frozen=True)
class Flood:
    """The processor's ceiling: heartbeats produced straight to the presence topic."""

    events: int
    processor: ProcessorWindow
    processor_idle_cores: float
    processor_us_per_event_gross: float | None
    processor_us_per_event: float | None
    """Net of what the processor uses idle: depends less on how busy the machine was."""
    events_per_processor_core_s: int | None
    produce_s: float
    produced_per_s: float | None
    caught_up_s: float | None
    handled_per_s: float | None
    peak_handled_per_s: float | None
    handled_per_s_series: list[tuple[float, float]]


@dataclass
class PresenceResults:
    watch: int
    sockets_per_user: int
    timeout_s: float
    users: int = 0
    groups: int = 0
    sockets: int = 0
    connect: PresenceConnect | None = None
    hold: ProcessorWindow | None = None
    steps: list[ChurnStep] = field(default_factory=list)
    flood: Flood | None = None
    error: str | None = None


@dataclass(frozen=True)
class Side:
    """One figure on the single-node stack and on the cluster, and cluster / single."""

    single: float | None
    cluster: float | None
    ratio: float | None

    @classmethod
    def of(cls, single: float | None, cluster: float | None) -> Self:
        ratio = round(cluster / single, 2) if single and cluster is not None else None
        return cls(single, cluster, ratio)


@dataclass(frozen=True)
class Replicated:
    """A run on the single-node stack beside the same run on the cluster (`--cluster`):
    `p50_ms`, `p99_ms`, `delivered_per_s`, `stack_us_per_delivery`, `broker_us_per_delivery`,
    `store_us_per_delivery` (Postgres, or Cassandra with scylla), `machine_cores`, `other_cores`; a curve's best rate within the bound has
    `max_delivered_per_s_within_bound` only."""

    run: str
    offered_per_s: float | None
    figures: dict[str, Side]


# --- the run --------------------------------------------------------------------------------


@dataclass
class Meta:
    timestamp: str
    quick: bool
    scenarios: list[str]
    cpus: int | None
    loadavg_before: list[float]
    git: str | None
    python: str
    bench_nofile_limit: list[int]
    config: dict[str, Any]
    stack: str = ""
    startup_s: float | None = None
    data_dir: str | None = None
    message_store: str = "postgres"
    cluster: bool = False
    """`parley dev --cluster`: three Kafka brokers (and Cassandra nodes with scylla)."""
    users: int = 0
    users_reused: int = 0
    ws_url: str = ""
    idle_stack_cpu_cores: dict[str, float] = field(default_factory=dict)
    """Cores each role of the stack uses with no client traffic."""
    idle_measured_s: float = 0.0
    idle_settled_s: float = 0.0
    """How long the stack was left to settle before its idle CPU was measured."""
    warm_up: list[WarmWindow] = field(default_factory=list)
    """The 1:1 load the stack was warmed with before the scenarios, window by window."""
    logs_copied: list[str] = field(default_factory=list)
    loadavg_after: list[float] = field(default_factory=list)
    total_s: float = 0.0
    plots: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Timing:
    wall_s: float
    start_s: float
    end_s: float
    cpu: Used | None


@dataclass(frozen=True)
class ClientObserved:
    unexpected_closes: dict[str, int]
    error_frames: dict[str, int]
    order_violations: int
    late: int
    fleet_reconnects: int


@dataclass
class Verdict:
    """One row of the target table."""

    figure: str
    measured: str
    target: str
    ok: bool | None
    notes: str = ""
    result: str = field(init=False)

    def __post_init__(self) -> None:
        self.result = {True: "PASS", False: "FAIL", None: "n/a"}[self.ok]


@dataclass
class Results:
    meta: Meta
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    settle_before: dict[str, Settle] = field(default_factory=dict)
    unread_messages: LoadRow | None = None
    """The setup's unread messages for the idle sockets' syncs."""
    floor: FloorResults | None = None
    connections: ConnectionResults | None = None
    storm: StormResults | None = None
    latency: LatencyResults | None = None
    throughput: ThroughputResults | None = None
    soak: SoakResults | None = None
    presence: PresenceResults | None = None
    search: SearchResults | None = None
    isolation: IsolationResults | None = None
    client_observed: ClientObserved | None = None
    logs: dict[str, LogScan] = field(default_factory=dict)
    targets: list[Verdict] = field(default_factory=list)
    cluster: Results | None = None
    """With `--cluster`: the latency and throughput scenarios again, on the cluster stack."""
    replication: list[Replicated] = field(default_factory=list)
    """With `--cluster`: each run's figures, single-node beside cluster."""
