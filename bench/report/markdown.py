"""The Markdown summary of a run: the target table, then a section per scenario, where the
CPU and the time went, and the problems seen; and the JSON file with every figure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from bench.harness.histograms import Summary
from bench.harness.results import (
    WARM_RATE,
    WARM_WINDOW_S,
    FloorRatios,
    FloorRun,
    IsolationPhase,
    IsolationResults,
    LoadRow,
    Paced,
    Ratios,
    Results,
    SearchResults,
    SoakResults,
    Verdict,
    WarmWindow,
    warm_settled,
)
from bench.report import floors as floor_report
from bench.report import replication
from bench.report.verdicts import ISOLATION_ROLES, fmt_ms, md_table, processor_cpu

CPU_ROLES = ("gateway", "processor", "broker", "postgres", "bench")
STACK_ROLES = ("gateway", "processor", "broker", "postgres")


def table(rows: list[Verdict]) -> str:
    head = "figure (SPEC §6, issue #4) | measured | target | result | notes"
    cells = (f"{v.figure} | {v.measured} | {v.target} | {v.result} | {v.notes}" for v in rows)
    return "\n".join(md_table(head, cells))


def write_json(path: Path, results: Results) -> None:
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _warm_up(windows: list[WarmWindow]) -> list[str]:
    if not windows:
        return []
    each = ", ".join(f"{w.broker_cores:.2f} (p99 {fmt_ms(w.p99_ms)})" for w in windows)
    until = (
        "until the broker's CPU settled (its JIT compiler)"
        if warm_settled(windows)
        else "and stopped by --warm-up-max before the broker's CPU settled (its JIT compiler)"
    )
    return [
        f"Warmed with 1:1 load at {WARM_RATE:,.0f} msgs/s in {len(windows)} windows of "
        f"{WARM_WINDOW_S:g} s {until}; "
        f"the broker's cores in each: {each}.",
        "",
    ]


def markdown(results: Results, plots: list[str]) -> str:
    meta = results.meta
    lines = [
        f"# Parley benchmark {meta.timestamp}",
        "",
        f"Mode: {'quick (smoke test; not comparable to targets)' if meta.quick else 'default'}; "
        f"stack: {meta.stack}; {meta.cpus} CPUs; load average before "
        f"{meta.loadavg_before}, after {meta.loadavg_after}; git {meta.git}; "
        f"total {meta.total_s} s; {meta.users} users.",
        "",
        f"CPU (cores) the idle stack used before any load: {meta.idle_stack_cpu_cores} "
        f"(over {meta.idle_measured_s:g} s, after {meta.idle_settled_s:g} s of settling).",
        "",
        *_warm_up(meta.warm_up),
        table(results.targets),
        *_latency(results),
        *_throughput(results),
        *replication.section(results),
        *_cpu(results),
        *_connections(results),
        *_storm(results),
        *_soak(results.soak),
        *_presence(results),
        *_search(results.search),
        *_isolation(results.isolation),
        *_time(results),
        *_problems(results),
    ]
    if plots:
        lines += ["", "## Plots", ""] + [f"- ![{Path(p).stem}]({Path(p).name})" for p in plots]
    if results.skipped:
        lines += ["", "## Skipped or failed", ""]
        lines += [f"- {k}: {v}" for k, v in results.skipped.items()]
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    """Inline Markdown code of a log line or an error (backquotes in it would end it)."""
    return "`" + text.replace("`", "'") + "`"


def _counts(counts: Mapping[Any, int], none: str = "none") -> str:
    return str(dict(counts)) if counts else none


def _dash(value: float | None) -> str:
    return "—" if value is None else str(value)


def _roles(results: Results, roles: tuple[str, ...]) -> tuple[str, ...]:
    """`roles`, and the embedded Cassandra after the broker when the run had one."""
    if results.meta.message_store == "postgres":
        return roles
    at = roles.index("broker") + 1
    return (*roles[:at], "cassandra", *roles[at:])


def _ratio(ratio: FloorRatios | Ratios | None) -> str:
    return f"{ratio.p50} / {ratio.p99}" if ratio is not None else "—"


def _p50_p99(summary: Summary) -> str:
    return f"{fmt_ms(summary.p50)} / {fmt_ms(summary.p99)}"


def _stopped(row: Paced | IsolationPhase) -> str:
    return " (stopped early)" if row.aborted else ""


def _cores(cores: Mapping[str, float], roles: tuple[str, ...]) -> str:
    """Cores (or CPU seconds) by role, in table cells; a role not seen: —."""
    return " | ".join(str(cores.get(role, "—")) for role in roles)


def _per(per: Mapping[str, int], roles: tuple[str, ...]) -> str:
    """CPU µs by role, in table cells; a role not seen: —."""
    return " | ".join(f"{per[role]:,}" if role in per else "—" for role in roles)


def _lag(lag: Summary) -> str:
    """The pacer's own error: how late sends left their schedule (p50 / p99 / max)."""
    return f"{fmt_ms(lag.p50)} / {fmt_ms(lag.p99)} / {fmt_ms(lag.max)}"


def _latency(results: Results) -> list[str]:
    floor = results.floor
    rows: list[Paced] = []
    if floor is not None:
        rows += [*floor.runs, *floor.two_hop_runs, *floor.durable_runs, *floor.echo_runs]
    rows += results.latency.runs if results.latency else []
    if not rows:
        return []
    lines = [
        "",
        "## Latency (send → `message` on the receiving socket; from the intended send time)",
        "",
        "Floors first (each a round trip the bench times the same way, at the same rates); "
        "Parley's runs as multiples of the one-hop floor and of the durable two-hop floor at "
        "the same rate (p50 to p50, p99 to p99). Send lag is the pacer's own error: how late "
        "each send left its schedule."
        + (f" The Kafka floors' client: {floor.client}." if floor and floor.client else ""),
        "",
    ]
    head = "scenario | offered/s | deliveries | p50 | p90 | p99 | p99.9 | max "
    head += "| x one-hop floor p50 / p99 | x durable floor p50 / p99 | lost | accepted p50 "
    head += "| send lag p50 / p99 / max | client CPU"
    cells = []
    for r in rows:
        lat, one_hop, durable, accepted, client = r.latency_ms, "—", "—", "—", "—"
        if isinstance(r, LoadRow):
            one_hop, durable = _ratio(r.ratio_to_floor), _ratio(r.ratio_to_durable_floor)
            accepted, client = fmt_ms(r.accept_latency_ms.p50), f"{r.client_cpu_pct}%"
        elif isinstance(r, FloorRun):
            one_hop = _ratio(r.ratio_to_idempotent_floor) if r.producer != "idempotent" else "1 / 1"
            if r.cpu is not None:
                client = f"{round(100 * r.cpu.cores.get('bench', 0.0))}%"
        cells.append(
            f"{r.scenario} | {r.offered_per_s:g} | {lat.count:,} | {fmt_ms(lat.p50)} "
            f"| {fmt_ms(lat.p90)} | {fmt_ms(lat.p99)} | {fmt_ms(lat.p99_9)} "
            f"| {fmt_ms(lat.max)} | {one_hop} | {durable} | {r.lost}{_stopped(r)} "
            f"| {accepted} | {_lag(r.send_lag_ms)} | {client}"
        )
    return (
        lines
        + md_table(head, cells)
        + floor_report.relays(results)
        + floor_report.transactions(results)
        + floor_report.depth(results)
    )


def _throughput(results: Results) -> list[str]:
    tp = results.throughput
    lines: list[str] = []
    roles = _roles(results, STACK_ROLES)
    for curve in tp.curves if tp else []:
        assert tp is not None
        unit = "msg" if curve.deliveries_per_message == 1 else "delivery"
        lines += [
            "",
            f"## Throughput: {curve.kind} ({tp.step_s:g} s steps, "
            f"{curve.deliveries_per_message} deliveries per message)",
            "",
            f"µs/{unit}: each process's CPU over the step and its drain, idle use included, "
            f"per {'message delivered' if unit == 'msg' else 'delivery'}; `stack` is all of "
            "them together, the load generator not counted"
            + (" (SPEC §6's CPU per 1:1 message)." if unit == "msg" else "."),
            "",
        ]
        head = "offered msgs/s | offered deliveries/s | sent | delivered/s | p50 | p99 | max "
        head += "| x durable floor p50 / p99 (floor's rate) | lost | within bound "
        head += "| send lag p50 / p99 / max | bench cores | machine cores"
        head += "".join(f" | {role} µs/{unit}" for role in (*roles, "stack"))
        cells = []
        for s in curve.steps:
            lat, cores = s.latency_ms, s.cpu.cores if s.cpu else {}
            per = s.cpu.stack_us_per_delivery if s.cpu else {}
            durable = s.ratio_to_durable_floor
            at = f" ({durable.floor_rate:g}/s)" if durable else ""
            cells.append(
                f"{s.offered_per_s:g} | {s.offered_deliveries_per_s or 0:,.0f} | {s.sent:,} "
                f"| {s.delivered_per_s} | {fmt_ms(lat.p50)} | {fmt_ms(lat.p99)} "
                f"| {fmt_ms(lat.max)} | {_ratio(durable)}{at} | {s.missing} "
                f"| {'yes' if s.within_bound else 'no'}{_stopped(s)} "
                f"| {_lag(s.send_lag_ms)} | {cores.get('bench', '—')} "
                f"| {cores.get('machine', '—')} | {_per(per, (*roles, 'total'))}"
            )
        lines += md_table(head, cells)
        if curve.skipped_rates:
            rates = ", ".join(f"{r:g}" for r in curve.skipped_rates)
            lines += ["", f"Not run (saturated before): {rates} msgs/s."]
    return lines


def _cpu(results: Results) -> list[str]:
    """Where each run's CPU went: what limits latency and throughput on this box."""
    rows: list[tuple[str, LoadRow | FloorRun]] = []
    floor = results.floor
    if floor is not None:
        floors = [*floor.runs, *floor.transactional_runs, *floor.two_hop_runs]
        rows += [(r.scenario, r) for r in [*floors, *floor.durable_runs, *floor.echo_runs]]
    rows += [(f"latency {r.scenario}", r) for r in results.latency.runs] if results.latency else []
    for curve in results.throughput.curves if results.throughput else []:
        rows += [(f"throughput, {curve.kind}", s) for s in curve.steps]
    if results.soak is not None and results.soak.run is not None:
        rows.append(("soak", results.soak.run))
    rows = [(name, r) for name, r in rows if r.cpu]
    if not rows:
        return []
    roles = _roles(results, CPU_ROLES)
    if any(r.cpu and "floor" in r.cpu.cores for _, r in rows):
        roles = (*roles, "floor")
    lines = [
        "",
        "## CPU by process during each run (cores) and per message sent (µs, net of idle)",
        "",
        f"The box has {results.meta.cpus} cores; the idle stack uses "
        f"{results.meta.idle_stack_cpu_cores}. When `machine` nears the core count, the run is "
        "CPU-bound and latency is queueing. `bench` is the load generator (the client, its "
        "workers); `floor` the floors' own servers (relay, echo server), which stand in for the "
        "stack in the floor rows. µs per message is CPU during the run and its drain, "
        "less the process's idle use, divided by messages sent (a group message is delivered "
        "to every other member).",
        "",
    ]
    head = f"run | msgs/s | {' | '.join(roles)} | other | machine | µs/msg: {' | '.join(roles)} "
    head += "| µs/msg total"
    cells = []
    for name, r in rows:
        assert r.cpu is not None
        cores, per = r.cpu.cores, r.cpu.cpu_us_per_send
        cells.append(
            f"{name} | {r.offered_per_s:g} | {_cores(cores, (*roles, 'other', 'machine'))} "
            f"| {_per(per, roles)} | {per.get('total', 0):,}"
        )
    return lines + md_table(head, cells)


def _connections(results: Results) -> list[str]:
    conns = results.connections
    if not conns or not conns.levels:
        return []
    base = conns.baseline.rss_bytes if conns.baseline else None
    lines = [
        "",
        f"## Idle connections (one gateway, pid {conns.gateway_pid}, "
        f"{conns.sockets_per_user} sockets per device token, baseline RSS "
        f"{(base or 0) / 2**20:.1f} MiB, gateway RLIMIT_NOFILE {conns.gateway_nofile_limit})",
        "",
    ]
    head = "level | held | RSS | KiB/conn (vs baseline) | marginal KiB/conn "
    head += "| connect+sync p50 / p99 | time to open | errors"
    cells = (
        f"{row.level:,} | {row.held:,} | {(row.rss_bytes or 0) / 2**20:.1f} MiB "
        f"| {_dash(row.kib_per_connection)} | {_dash(row.marginal_kib_per_connection)} "
        f"| {row.connect_and_sync_s.p50} s / {row.connect_and_sync_s.p99} s "
        f"| {row.elapsed_s} s | {_counts(row.connects.errors, '—')}"
        for row in conns.levels
    )
    return lines + md_table(head, cells)


def _storm(results: Results) -> list[str]:
    storm = results.storm
    if not storm or storm.reconnect is None:
        return []
    r = storm.reconnect
    t = r.time_to_synced_s
    return [
        "",
        "## Reconnect storm",
        "",
        f"- {storm.dropped:,} clients closed at once in {storm.drop_s} s, then all "
        f"reconnected at once: {r.connects.opened:,} synced, {r.connects.failed} not synced within "
        f"{storm.deadline_s:g} s; all synced after {r.all_synced_s} s.",
        f"- Per client time to `synced`: p50 {t.p50} s, p90 {t.p90} s, p99 {t.p99} s, "
        f"max {t.max} s; {r.connects.retries} retries; errors {_counts(r.connects.errors)}.",
        f"- Messages in each sync: expected {r.expected_sync_messages}, got "
        f"{r.sync_messages_min}..{r.sync_messages_max} "
        f"({r.sync_count_wrong} clients with a different count).",
        *(
            f"- First `{kind}` error: {_code(text)}"
            for kind, text in r.connects.error_samples.items()
        ),
    ]


def _soak(soak: SoakResults | None) -> list[str]:
    run = soak.run if soak else None
    if soak is None or run is None:
        return []
    lat, durable = run.latency_ms, run.ratio_to_durable_floor
    lines = [
        "",
        f"## Soak ({run.sent:,} messages at {soak.rate:g}/s; {soak.busy_channel_sends:,} in one "
        f"channel, the rest over {soak.quiet_channels} channels)",
        "",
        f"Whole run: p50 {fmt_ms(lat.p50)}, p99 {fmt_ms(lat.p99)}, max {fmt_ms(lat.max)} "
        f"({_ratio(run.ratio_to_durable_floor)} x the durable two-hop floor"
        f"{f' at {durable.floor_rate:g}/s' if durable else ''}); "
        f"{run.missing} lost, {run.unaccepted} not accepted, {soak.order_violations} order "
        f"violations; errors {_counts(run.errors)}; send lag p50 / p99 / max "
        f"{_lag(run.send_lag_ms)}.",
        "",
    ]
    per = soak.postgres.bytes_per_message if soak.postgres else None
    if soak.postgres and per:
        lines += [
            f"Postgres on disk per stored message ({soak.postgres.messages_stored:,} stored "
            f"by the soak, ~{soak.text_chars}-character texts): {per['total']:,.0f} bytes "
            f"(`messages` heap {per['messages_heap_bytes']:,.0f} + indexes "
            f"{per['messages_index_bytes']:,.0f}; `message_sends` heap "
            f"{per['message_sends_heap_bytes']:,.0f} + indexes "
            f"{per['message_sends_index_bytes']:,.0f}), before WAL and replicas.",
            "",
        ]
    head = "tenth of the sends | deliveries | p50 | p99 | max"
    cells = (
        f"{w.window} | {w.deliveries:,} | {fmt_ms(w.p50)} | {fmt_ms(w.p99)} | {fmt_ms(w.max)}"
        for w in soak.windows
    )
    return lines + md_table(head, cells)


def _search(search: SearchResults | None) -> list[str]:
    if search is None:
        return []
    lag = search.lag_ms
    lines = [
        "",
        f"## Search (lag over {search.lag_messages:,} messages at {search.lag_rate:g}/s; queries "
        f"over {search.indexed_messages:,} indexed messages)",
        "",
        f"Send → searchable through the stack (polled every 10 ms): p50 {fmt_ms(lag.p50)}, "
        f"p99 {fmt_ms(lag.p99)}, max {fmt_ms(lag.max)}; {search.lag_missing} never found.",
        "",
    ]
    if search.load_s is not None:
        lines += [
            f"Bulk load through `SearchIndex.add`: {search.load_s:,} s "
            f"({search.load_msgs_per_s:,.0f} msgs/s); {search.index_bytes_per_message:,.0f} bytes "
            "on disk per indexed message (table, GIN and TOAST).",
            "",
        ]
    head = (
        "searcher | query | messages visible | queries | p50 | p99 | max | hits/query | too costly"
    )
    cells = (
        f"{q.who} | {q.kind} | {q.visible_messages:,} | {q.count} | {fmt_ms(q.p50_ms)} | "
        f"{fmt_ms(q.p99_ms)} | {fmt_ms(q.max_ms)} | {q.mean_hits:g} | {q.too_costly}"
        for q in search.queries
    )
    return lines + md_table(head, cells)


def _isolation(iso: IsolationResults | None) -> list[str]:
    if iso is None or not iso.phases:
        return []
    lines = [
        "",
        f"## Isolation ({iso.pairs} unrelated 1:1 pairs at {iso.rate:g} msgs/s in all, "
        f"{iso.phase_s:g} s per phase)",
        "",
        "The pairs' latency from each send's intended time; `accepted`: from the same time to "
        "the sender's `accepted` (the first hop: gateway and broker; the rest is the processor "
        "and the second hop); lost: not delivered by the end of the drain; cores by process "
        "over the phase (`bench` is the load generator: the pairs, the flooding user and the "
        "searchers).",
        "",
    ]
    head = "phase | sent | delivered | lost | duplicated | out of order | p50 | p99 | max "
    head += f"| accepted p50 / p99 | send lag p99 | {' | '.join(ISOLATION_ROLES)}"
    lines += md_table(
        head,
        (
            f"{p.phase} | {p.sent:,} | {p.delivered:,} | {p.lost}{_stopped(p)} | {p.duplicates} "
            f"| {p.out_of_order} | {fmt_ms(p.latency_ms.p50)} | {fmt_ms(p.latency_ms.p99)} "
            f"| {fmt_ms(p.latency_ms.max)} | {fmt_ms(p.accept_ms.p50)} / {fmt_ms(p.accept_ms.p99)} "
            f"| {fmt_ms(p.send_lag_ms.p99)} "
            f"| {_cores(p.cpu_cores, ISOLATION_ROLES)}"
            for p in iso.phases
        ),
    )
    flood = iso.flood
    if flood is not None:
        lat = flood.latency_ms
        lines += [
            "",
            f"Huge-text flood: {flood.texts} texts of {flood.text_chars:,} x U+FDFA "
            f"({flood.nfkc_chars:,} characters under NFKC, {flood.frame_bytes:,}-byte frames), "
            f"sent at most {flood.rate_per_s:g}/s with a burst of {flood.burst}: "
            f"{flood.sends} send frames ({flood.rate_limited} answered `rate_limited` and "
            f"sent again), the last after {_dash(flood.sends_done_s)} s; all answered after "
            f"{_dash(flood.all_accepted_s)} s; {flood.delivered} of {flood.texts} delivered, "
            f"all after {_dash(flood.all_delivered_s)} s; {flood.duplicates} duplicated, "
            f"{flood.wrong_text} altered, {flood.out_of_order} out of order; errors "
            f"{_counts(flood.errors)}; send → delivered p50 {fmt_ms(lat.p50)}, max "
            f"{fmt_ms(lat.max)}"
            + (f"; sockets closed {flood.closes}" if flood.closes else "")
            + ".",
        ]
    search = iso.search
    if search is not None:
        lat, ok = search.latency_ms, search.ok_latency_ms
        lines += [
            "",
            f"Search flood: {search.clients} clients of one user, `GET /v1/search?q="
            f"{search.query}&limit={search.limit}` in a loop for {search.seconds:g} s (the "
            f"last answer after {_dash(search.elapsed_s)} s) over "
            f"{search.seeded} messages of {search.seed_chars:,} characters (seeded and "
            f"searchable in {_dash(search.seed_s)} s): {search.queries:,} answers "
            f"({_dash(search.answers_per_s)}/s), by status {_counts(search.statuses)}; "
            f"latency p50 / p99 / max {fmt_ms(lat.p50)} / {fmt_ms(lat.p99)} / "
            f"{fmt_ms(lat.max)} (200s: {fmt_ms(ok.p50)} / {fmt_ms(ok.p99)}); "
            f"{_dash(search.results_per_answer)} results and {_dash(search.kib_per_answer)} "
            f"KiB per answer. One at a time, before the baseline: p50 / max "
            f"{fmt_ms(search.alone_ms.p50)} / {fmt_ms(search.alone_ms.max)} "
            f"({_counts(search.alone_statuses)}). CPU per answer over the whole flood, net of "
            f"the baseline phase's: {search.cpu_ms_per_answer or '—'} ms.",
        ]
    return lines


def _presence(results: Results) -> list[str]:
    presence = results.presence
    if not presence or presence.connect is None:
        return []
    connect, hold, flood = presence.connect, presence.hold, presence.flood
    lines = [
        "",
        f"## Presence ({presence.users:,} users in {presence.groups} groups, "
        f"{presence.sockets:,} sockets each watching {presence.watch} friends, "
        f"timeout {presence.timeout_s:g} s)",
        "",
        f"- Connect: {connect.held:,} sockets held, errors {_counts(connect.connects.errors)}; "
        f"snapshots {connect.subscribed.snapshot_frames:,}/{connect.subscribed.expected:,} "
        f"frames; error frames {_counts(connect.subscribed.error_frames)}.",
    ]
    if hold:
        lines.append(
            f"- Idle and heartbeating for {hold.seconds} s: the processor handled "
            f"{hold.events_per_s:,} events/s ({processor_cpu(hold.cpu_cores)})."
        )
    if flood:
        lines.append(
            f"- Ceiling: {flood.events:,} heartbeats produced straight to the topic in "
            f"{flood.produce_s} s ({flood.produced_per_s or 0:,}/s); the processor's committed "
            f"offsets caught up after {flood.caught_up_s} s: {flood.handled_per_s} "
            f"events/s on average, {flood.peak_handled_per_s}/s at best over 0.5 s "
            f"({processor_cpu(flood.processor.cpu_cores)}; load average "
            f"{flood.processor.loadavg_1m}). Net of its idle {flood.processor_idle_cores} "
            f"cores, the processor spent {flood.processor_us_per_event} µs of CPU per event, "
            f"about {flood.events_per_processor_core_s} events/s per free core "
            f"({flood.processor_us_per_event_gross} µs counting all its CPU)."
        )
    if not presence.steps:
        return lines
    head = "users/s offline and back | changes | frames/s (steady; nominal) | peak "
    head += "| online p50 / p99 | offline after timeout p50 / p99 | frames expected / got "
    head += "| unscheduled | events/s | CPU (cores)"
    cells = (
        f"{s.users_per_s:g} | {s.changes_scheduled:,} "
        f"| {s.notifications_per_s_steady}; {s.notifications_per_s_nominal} "
        f"| {s.notifications_per_s_peak:,} | {_p50_p99(s.online_after_reconnect_ms)} "
        f"| {_p50_p99(s.offline_after_timeout_ms)} "
        f"| {s.steady_watchers_expected:,} / {s.steady_watchers_received:,} "
        f"| {s.unscheduled_changes} | {s.processor.events_per_s} "
        f"| {processor_cpu(s.processor.cpu_cores)}"
        for s in presence.steps
    )
    return [*lines, "", *md_table(head, cells)]


def _time(results: Results) -> list[str]:
    if not results.timings:
        return []
    roles = _roles(
        results,
        ("gateway", "processor", "broker", "postgres", "bench", "parley-dev", "other"),
    )
    lines = [
        "",
        "## Where the time went (wall seconds; CPU seconds by process during each phase)",
        "",
    ]
    lines += md_table(
        f"phase | wall s | {' | '.join(roles)} | machine busy",
        (
            f"{phase} | {t.wall_s} | {_cores(t.cpu.by_role if t.cpu else {}, roles)} "
            f"| {t.cpu.machine_busy if t.cpu else '—'}"
            for phase, t in results.timings.items()
        ),
    )
    lines += [
        "",
        "`other` is CPU used by processes outside the stack and the bench (e.g. someone else's "
        "test run on this 2-core machine): when it is high, figures are pessimistic. The "
        "floors' relays and echo server live within the floor phase, so a phase cannot see "
        "them: their CPU is under `other` here, and under `floor` in the CPU table above.",
    ]
    return lines


def _problems(results: Results) -> list[str]:
    lines = ["", "## Problems seen", ""]
    client = results.client_observed
    if client is not None:
        lines.append(
            f"- Client side: unexpected socket closes {_counts(client.unexpected_closes)}; "
            f"error frames {_counts(client.error_frames)}; per-channel order violations "
            f"{client.order_violations}; late/unmatched deliveries {client.late}."
        )
    for name, scan in results.logs.items():
        lines.append(f"- `{name}` ({scan.lines} lines): {scan.matches or 'nothing suspicious'}")
        if scan.errors_by_phase:
            lines.append(f"    - errors by bench phase: {scan.errors_by_phase}")
        lines += [f"    - {_code(sample)}" for sample in scan.samples[:12]]
    lines += [f"- {note}" for note in results.notes]
    return lines
