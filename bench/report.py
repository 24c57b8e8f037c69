"""Results: the JSON file, the Markdown summary against SPEC §6, and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bench import floor_report, presence_report, soak
from bench.verdict import TARGET_RATE, Verdict, fmt_ms

IDLE_SOCKET_KIB = 10.0
STORM_S = 15.0
IDLE_CORES = 0.05
"""What "≈ 0" is taken to mean for the idle stack: 5% of one core, all processes together."""


def _latency_row(results: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    runs = [r for r in results.get("latency", {}).get("runs", []) if r["scenario"] == scenario]
    if not runs:
        return None
    best: dict[str, Any] = min(runs, key=lambda r: abs(r["offered_per_s"] - TARGET_RATE))
    return best


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    out: list[Verdict] = []
    for scenario, name in (("1:1", "1:1"), ("group", "group")):
        row = _latency_row(results, scenario)
        size = results.get("latency", {}).get("group_size")
        label = name if scenario == "1:1" else f"{size}-member group" if size else "group"
        if row is None:
            for pct, limit in (("p50", 10.0), ("p99", 50.0)):
                out.append(
                    Verdict(
                        f"{label} latency {pct} @ 1k msgs/s", "not run", f"≤ {limit:g} ms", None
                    )
                )
            continue
        rate = row["offered_per_s"]
        lost = row["missing"] + row["send_failed"]
        notes = []
        if rate != TARGET_RATE:
            notes.append(f"measured at {rate:g} msgs/s, not 1k")
        if lost:
            notes.append(f"{lost} deliveries lost/undelivered")
        if row.get("aborted"):
            notes.append("run stopped early: " + row["aborted"])
        ratio = row.get("ratio_to_floor", {})
        if ratio.get("floor_lost"):
            notes.append(f"the floor itself lost {ratio['floor_lost']} records at this rate")
        for pct, limit in (("p50", 10.0), ("p99", 50.0)):
            value = row["latency_ms"][pct]
            ok = None if value is None else (value <= limit and not lost and not row["aborted"])
            floor_note = f"{ratio[pct]}x floor" if ratio.get(pct) else ""
            out.append(
                Verdict(
                    f"{label} latency {pct} @ {rate:g} msgs/s",
                    fmt_ms(value),
                    f"≤ {limit:g} ms",
                    ok if rate == TARGET_RATE else None,
                    "; ".join(x for x in [floor_note, *notes] if x),
                )
            )
    tp = results.get("throughput")
    if tp and tp.get("curves"):
        best = tp.get("max_delivered_per_s_within_bound", 0.0)
        parts = []
        for curve in tp["curves"]:
            top = max(s["offered_deliveries_per_s"] for s in curve["steps"])
            part = (
                f"{curve['kind']}: {curve['max_delivered_per_s_within_bound']:,.0f}/s "
                f"(steps to {top:,.0f} deliveries/s offered"
            )
            if curve.get("stopped_because"):
                part += f"; stopped: {curve['stopped_because']}"
            parts.append(part + ")")
        tried_5k = any(
            s["offered_deliveries_per_s"] >= 5000 for c in tp["curves"] for s in c["steps"]
        )
        stopped = all(c.get("stopped_because") for c in tp["curves"])
        out.append(
            Verdict(
                f"delivered msgs/s with p99 ≤ {tp['p99_bound_ms']:g} ms",
                f"{best:,.0f} msgs/s",
                "≥ 5,000 msgs/s",
                True if best >= 5000 else (False if stopped or tried_5k else None),
                "; ".join(parts),
            )
        )
    else:
        out.append(Verdict("delivered msgs/s with p99 ≤ 100 ms", "not run", "≥ 5,000", None))
    conns = results.get("connections")
    if conns and conns.get("levels"):
        top = conns["levels"][-1]
        kib = top.get("kib_per_connection")
        note = f"{top['held']:,} sockets held"
        if top.get("marginal_kib_per_connection") is not None:
            note += f"; marginal {top['marginal_kib_per_connection']} KiB/conn"
        if top["level"] != 10000:
            note += f"; measured at {top['level']:,}, not 10k"
        full = top["held"] >= top["level"]
        if not full:
            note += f"; only {top['held']:,} of {top['level']:,} connected"
        out.append(
            Verdict(
                f"gateway RSS per idle connection @ {top['level']:,}",
                "—" if kib is None else f"{kib:.1f} KiB",
                f"≤ {IDLE_SOCKET_KIB:g} KiB @ 10,000",
                None if kib is None or top["level"] < 10000 else (kib <= IDLE_SOCKET_KIB and full),
                note,
            )
        )
    else:
        out.append(
            Verdict(
                "gateway RSS per idle connection @ 10k",
                "not run",
                f"≤ {IDLE_SOCKET_KIB:g} KiB",
                None,
            )
        )
    storm = results.get("storm")
    if storm and "synced" in storm:
        n = storm["reconnecting"]
        total = storm.get("all_synced_s")
        measured = f"{total:.2f} s" if total is not None else f"{storm['synced']:,}/{n:,} synced"
        t = storm["time_to_synced_s"]
        note = f"per client p50 {t['p50']} s, p99 {t['p99']} s; {storm['retries']} retries"
        if n != 5000:
            note += f"; {n:,} clients, not 5,000"
        out.append(
            Verdict(
                f"reconnect storm: {n:,} clients all synced",
                measured,
                f"≤ {STORM_S:g} s for 5,000",
                (total is not None and total <= STORM_S) if n >= 5000 else None,
                note,
            )
        )
    else:
        out.append(
            Verdict(
                "reconnect storm: 5,000 clients all synced", "not run", f"≤ {STORM_S:g} s", None
            )
        )
    out += floor_report.verdicts(results)
    out.append(soak.verdict(results))
    out.append(_idle_verdict(results))
    return out + presence_report.verdicts(results)


def _idle_verdict(results: dict[str, Any]) -> Verdict:
    """SPEC §6: the idle dev stack uses about no CPU (Kafka long-polls; nothing spins)."""
    idle = results.get("meta", {}).get("idle_stack_cpu_cores")
    if not idle:
        return Verdict("idle CPU of the whole dev stack", "not measured", "≈ 0", None)
    total = sum(idle.values())
    parts = ", ".join(f"{role} {cores:.3f}" for role, cores in sorted(idle.items()) if cores)
    return Verdict(
        "idle CPU of the whole dev stack",
        f"{total:.3f} cores",
        f"≈ 0 (≤ {IDLE_CORES:g} cores)",
        total <= IDLE_CORES,
        parts or "every process at 0",
    )


def table(rows: list[Verdict]) -> str:
    lines = [
        "| figure (SPEC §6, issue #4) | measured | target | result | notes |",
        "|---|---|---|---|---|",
    ]
    for v in rows:
        lines.append(f"| {v.figure} | {v.measured} | {v.target} | {v.mark} | {v.note} |")
    return "\n".join(lines)


def _latency_details(results: dict[str, Any]) -> list[str]:
    rows = list(results.get("floor", {}).get("runs", []))
    rows += list(results.get("latency", {}).get("runs", []))
    if not rows:
        return []
    lines = [
        "",
        "## Latency (send → `message` on the receiving socket; from the intended send time)",
        "",
        "| scenario | offered/s | deliveries | p50 | p90 | p99 | p99.9 | max | floor multiple p50/p99 | lost | accepted p50 | send lag p99 | client CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency_ms"]
        ratio = r.get("ratio_to_floor") or {}
        ratio_txt = f"{ratio.get('p50')}/{ratio.get('p99')}" if ratio else "1/1"
        lost = r.get("missing", 0) + r.get("send_failed", r.get("produce_errors", 0))
        acc = r.get("accept_latency_ms", {}).get("p50")
        lines.append(
            f"| {r['scenario']} | {r['offered_per_s']:g} | {lat['count']:,} | {fmt_ms(lat['p50'])} "
            f"| {fmt_ms(lat['p90'])} | {fmt_ms(lat['p99'])} | {fmt_ms(lat['p99_9'])} "
            f"| {fmt_ms(lat['max'])} | {ratio_txt} | {lost}{' (stopped early)' if r.get('aborted') else ''} "
            f"| {fmt_ms(acc)} | {fmt_ms(r['send_lag_ms']['p99'])} "
            f"| {r.get('client_cpu_pct', '—')}% |"
        )
    return lines + floor_report.transaction_details(results) + floor_report.depth_details(results)


def _throughput_details(results: dict[str, Any]) -> list[str]:
    tp = results.get("throughput")
    if not tp or not tp.get("curves"):
        return []
    lines: list[str] = []
    for curve in tp["curves"]:
        lines += [
            "",
            f"## Throughput: {curve['kind']} ({tp['step_s']:g} s steps, "
            f"{curve['deliveries_per_message']} deliveries per message)",
            "",
            "| offered msgs/s | offered deliveries/s | sent | delivered/s | p50 | p99 | max "
            "| lost | within bound | send lag p99 | machine cores |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in curve["steps"]:
            lat = s["latency_ms"]
            lines.append(
                f"| {s['offered_per_s']:g} | {s['offered_deliveries_per_s']:,.0f} | {s['sent']:,} "
                f"| {s['delivered_per_s']} | {fmt_ms(lat['p50'])} | {fmt_ms(lat['p99'])} "
                f"| {fmt_ms(lat['max'])} | {s['missing']} "
                f"| {'yes' if s['within_bound'] else 'no'}{' (stopped early)' if s['aborted'] else ''} "
                f"| {fmt_ms(s['send_lag_ms']['p99'])} | {s['cpu']['cores'].get('machine')} |"
            )
        if curve.get("skipped_rates"):
            lines.append("")
            lines.append(
                "Not run (saturated before): "
                f"{', '.join(f'{r:g}' for r in curve['skipped_rates'])} msgs/s."
            )
    return lines


CPU_ROLES = ("gateway", "processor", "broker", "postgres", "bench")


def _roles(results: dict[str, Any], roles: tuple[str, ...]) -> tuple[str, ...]:
    """`roles`, and the embedded Cassandra after the broker when the run had one."""
    if results.get("meta", {}).get("message_store", "postgres") == "postgres":
        return roles
    at = roles.index("broker") + 1
    return (*roles[:at], "cassandra", *roles[at:])


def _cpu_details(results: dict[str, Any]) -> list[str]:
    """Where each run's CPU went: what limits latency and throughput on this box."""
    rows = [(f"latency {r['scenario']}", r) for r in results.get("latency", {}).get("runs", [])]
    for curve in results.get("throughput", {}).get("curves", []):
        rows += [(f"throughput, {curve['kind']}", s) for s in curve["steps"]]
    rows = [(name, r) for name, r in rows if r.get("cpu")]
    if not rows:
        return []
    idle = results.get("meta", {}).get("idle_stack_cpu_cores")
    cpu_roles = _roles(results, CPU_ROLES)
    lines = [
        "",
        "## CPU by process during each run (cores) and per message sent (µs, net of idle)",
        "",
        f"The box has {results['meta']['cpus']} cores; the idle stack uses {idle}. "
        "When `machine` nears the core count, the run is CPU-bound "
        "and latency is queueing. µs per message is CPU during the run and its drain, less the "
        "process's idle use, divided by messages sent (a group message is delivered to every "
        "other member).",
        "",
        "| run | msgs/s | "
        + " | ".join(cpu_roles)
        + " | other | machine | µs/msg: "
        + " | ".join(cpu_roles)
        + " | µs/msg total |",
        "|---|---|" + "---|" * (2 * len(cpu_roles) + 3),
    ]
    for name, r in rows:
        cores, per = r["cpu"]["cores"], r["cpu"]["cpu_us_per_send"]
        lines.append(
            f"| {name} | {r['offered_per_s']:g} | "
            + " | ".join(str(cores.get(role, "—")) for role in cpu_roles)
            + f" | {cores.get('other', '—')} | {cores.get('machine', '—')} | "
            + " | ".join(f"{per[role]:,}" if role in per else "—" for role in cpu_roles)
            + f" | {per.get('total', 0):,} |"
        )
    return lines


def _connection_details(results: dict[str, Any]) -> list[str]:
    conns = results.get("connections")
    if not conns or not conns.get("levels"):
        return []
    base = conns.get("baseline", {}).get("rss_bytes")
    lines = [
        "",
        f"## Idle connections (one gateway, pid {conns.get('gateway_pid')}, "
        f"{conns['sockets_per_user']} sockets per device token, baseline RSS "
        f"{(base or 0) / 2**20:.1f} MiB, gateway RLIMIT_NOFILE {conns.get('gateway_nofile_limit')})",
        "",
        "| level | held | RSS | KiB/conn (vs baseline) | marginal KiB/conn | connect+sync p50 / p99 | time to open | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in conns["levels"]:
        rss = row.get("rss_bytes")
        cs = row["connect_and_sync_s"]
        lines.append(
            f"| {row['level']:,} | {row['held']:,} | {(rss or 0) / 2**20:.1f} MiB "
            f"| {row.get('kib_per_connection', '—')} | {row.get('marginal_kib_per_connection', '—')} "
            f"| {cs['p50']} s / {cs['p99']} s | {row['elapsed_s']} s | {row['errors'] or '—'} |"
        )
    return lines


def _storm_details(results: dict[str, Any]) -> list[str]:
    storm = results.get("storm")
    if not storm or "synced" not in storm:
        return []
    t = storm["time_to_synced_s"]
    samples = [
        "- First `" + kind + "` error: `" + text.replace("`", "'") + "`"
        for kind, text in (storm.get("error_samples") or {}).items()
    ]
    return [
        "",
        "## Reconnect storm",
        "",
        f"- {storm['dropped']:,} clients closed at once in {storm['drop_s']} s, then all "
        f"reconnected at once: {storm['synced']:,} synced, {storm['failed']} not synced within "
        f"{storm['deadline_s']:g} s; all synced after {storm.get('all_synced_s')} s.",
        f"- Per client time to `synced`: p50 {t['p50']} s, p90 {t['p90']} s, p99 {t['p99']} s, "
        f"max {t['max']} s; {storm['retries']} retries; errors {storm['errors'] or 'none'}.",
        f"- Messages in each sync: expected {storm['expected_sync_messages']}, got "
        f"{storm['sync_messages_min']}..{storm['sync_messages_max']} "
        f"({storm['sync_count_wrong']} clients with a different count).",
        *samples,
    ]


def _time_details(results: dict[str, Any]) -> list[str]:
    timings = results.get("timings", {})
    if not timings:
        return []
    roles = _roles(
        results, ("gateway", "processor", "broker", "postgres", "bench", "parley-dev", "other")
    )
    lines = [
        "",
        "## Where the time went (wall seconds; CPU seconds by process during each phase)",
        "",
        "| phase | wall s | " + " | ".join(roles) + " | machine busy |",
        "|---|---|" + "---|" * len(roles) + "---|",
    ]
    for phase, t in timings.items():
        cpu = t.get("cpu", {})
        cells = " | ".join(str(cpu.get(role, "—")) for role in roles)
        lines.append(f"| {phase} | {t['wall_s']} | {cells} | {cpu.get('machine_busy', '—')} |")
    lines.append("")
    lines.append(
        "`other` is CPU used by processes outside the stack and the bench (e.g. someone else's "
        "test run on this 2-core machine): when it is high, figures are pessimistic."
    )
    return lines


def _problem_details(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Problems seen", ""]
    client = results.get("client_observed", {})
    lines.append(
        f"- Client side: unexpected socket closes {client.get('unexpected_closes') or 'none'}; "
        f"error frames {client.get('error_frames') or 'none'}; per-channel order violations "
        f"{client.get('order_violations', 0)}; late/unmatched deliveries {client.get('late', 0)}."
    )
    for name, info in (results.get("logs") or {}).items():
        if not isinstance(info, dict):
            continue
        matches = info.get("matches") or {}
        lines.append(f"- `{name}` ({info.get('lines')} lines): {matches or 'nothing suspicious'}")
        if info.get("errors_by_phase"):
            lines.append(f"    - errors by bench phase: {info['errors_by_phase']}")
        for sample in info.get("samples", [])[:12]:
            clean = sample.replace("`", "'")
            lines.append(f"    - `{clean}`")
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return lines


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    meta = results["meta"]
    rows = verdicts(results)
    lines = [
        f"# Parley benchmark {meta['timestamp']}",
        "",
        f"Mode: {'quick (smoke test; not comparable to targets)' if meta['quick'] else 'default'}; "
        f"stack: {meta['stack']}; {meta['cpus']} CPUs; load average before "
        f"{meta['loadavg_before']}, after {meta.get('loadavg_after')}; git {meta.get('git')}; "
        f"total {meta.get('total_s')} s; {meta.get('users')} users.",
        "",
        f"CPU (cores) the idle stack used before any load: {meta.get('idle_stack_cpu_cores')}.",
        "",
        table(rows),
    ]
    lines += _latency_details(results)
    lines += _throughput_details(results)
    lines += _cpu_details(results)
    lines += _connection_details(results)
    lines += _storm_details(results)
    lines += soak.details(results)
    lines += presence_report.details(results)
    lines += _time_details(results)
    lines += _problem_details(results)
    if plots:
        lines += ["", "## Plots", ""] + [f"- ![{Path(p).stem}]({Path(p).name})" for p in plots]
    skipped = results.get("skipped") or {}
    if skipped:
        lines += ["", "## Skipped or failed", ""] + [f"- {k}: {v}" for k, v in skipped.items()]
    return "\n".join(lines) + "\n"


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


# --- plots -------------------------------------------------------------------------------------


def plots(results: dict[str, Any], raw: dict[str, list[float]], prefix: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.stats import cdf_points

    written: list[str] = []

    def cdf(ax: Any, samples: list[float], label: str, style: str = "-") -> None:
        positive = [max(v, 1e-3) for v in samples]
        xs, ys = cdf_points(positive, 3000)
        if xs:
            ax.plot(xs, ys, style, label=label, linewidth=1.4)

    kinds = [k for k in ("1:1", "group") if any(key.startswith(f"{k}@") for key in raw)]
    if kinds:
        fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.5), squeeze=False)
        floors = {key.split("@")[1]: v for key, v in raw.items() if key.startswith("floor@")}
        txn_floors = {
            key.split("@")[1]: v for key, v in raw.items() if key.startswith("floor-txn@")
        }
        for ax, kind in zip(axes[0], kinds, strict=True):
            for key, samples in raw.items():
                if key.startswith(f"{kind}@"):
                    rate = key.split("@")[1]
                    cdf(ax, samples, f"{kind} @ {rate}/s")
                    if rate in floors:
                        cdf(ax, floors[rate], f"floor @ {rate}/s", "--")
                    if rate in txn_floors:
                        cdf(ax, txn_floors[rate], f"transactional floor @ {rate}/s", "-.")
            ax.set_xscale("log")
            ax.set_xlabel("latency (ms, log)")
            ax.set_ylabel("fraction of deliveries ≤ x")
            ax.set_title(f"{kind} send → receive")
            ax.axvline(10, color="grey", linestyle=":", linewidth=1)
            ax.axvline(50, color="grey", linestyle=":", linewidth=1)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = prefix.with_name(prefix.name + "-latency-cdf.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    tp = results.get("throughput")
    if tp and tp.get("curves"):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        ax2 = ax.twinx()
        top = 0.0
        for n, curve in enumerate(tp["curves"]):
            steps = curve["steps"]
            offered = [s["offered_deliveries_per_s"] for s in steps]
            delivered = [s["delivered_per_s"] or 0 for s in steps]
            p99 = [s["latency_ms"]["p99"] or float("nan") for s in steps]
            color = f"C{n}"
            ax.plot(offered, delivered, "o-", color=color, label=f"delivered/s, {curve['kind']}")
            ax2.plot(offered, p99, "s--", color=color, alpha=0.6, label=f"p99, {curve['kind']}")
            top = max(top, *offered)
        ax.plot([0, top], [0, top], ":", color="grey", label="delivered = offered")
        ax.set_xlabel("offered deliveries/s (messages/s x recipients)")
        ax.set_ylabel("delivered/s")
        ax.grid(True, alpha=0.3)
        ax2.axhline(
            tp["p99_bound_ms"],
            color="tab:red",
            linestyle=":",
            linewidth=1,
            label=f"p99 bound {tp['p99_bound_ms']:g} ms",
        )
        ax2.set_yscale("log")
        ax2.set_ylabel("p99 latency (ms, log)")
        lines1, labels1 = ax.get_legend_handles_labels()
        lines2, labels2 = ax2.get_legend_handles_labels()
        ax.legend(lines1 + lines2, labels1 + labels2, loc="upper left", fontsize=7)
        ax.set_title("throughput: delivered vs offered, with p99")
        fig.tight_layout()
        path = prefix.with_name(prefix.name + "-throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    conns = results.get("connections")
    if conns and conns.get("levels"):
        levels = conns["levels"]
        names = [f"{row['level']:,}" for row in levels]
        avg = [row.get("kib_per_connection") or 0 for row in levels]
        marginal = [row.get("marginal_kib_per_connection") or 0 for row in levels]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        xs = list(range(len(names)))
        ax.bar([x - 0.2 for x in xs], avg, width=0.4, label="vs baseline (RSS - RSS0)/n")
        ax.bar([x + 0.2 for x in xs], marginal, width=0.4, label="marginal, vs previous level")
        ax.axhline(
            IDLE_SOCKET_KIB,
            color="tab:red",
            linestyle=":",
            label=f"target {IDLE_SOCKET_KIB:g} KiB",
        )
        ax.set_xticks(xs, names)
        ax.set_xlabel("idle connected sockets")
        ax.set_ylabel("gateway RSS per connection (KiB)")
        ax.set_title("idle connection memory on one gateway")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        path = prefix.with_name(prefix.name + "-memory.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    if raw.get("storm"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        storm_x, storm_y = cdf_points(raw["storm"], 3000)
        ax.plot(storm_x, storm_y, "-")
        ax.axvline(STORM_S, color="tab:red", linestyle=":", label=f"target {STORM_S:g} s")
        ax.set_xlabel("seconds from reconnect to synced")
        ax.set_ylabel("fraction of clients synced")
        ax.set_title(f"reconnect storm: {len(raw['storm']):,} clients")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = prefix.with_name(prefix.name + "-storm.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    presence_plot = presence_report.plot(results, prefix)
    if presence_plot is not None:
        written.append(presence_plot)
    return written
