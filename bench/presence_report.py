"""The presence scenario's rows in the summary table, its Markdown section and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.verdict import Verdict, fmt_ms

TARGET = "measure (issue #4)"


def _cpu(window: dict[str, Any]) -> str:
    cpu = window.get("cpu_cores", {})
    return (
        f"processor {cpu.get('processor', '—')}, gateway {cpu.get('gateway', '—')}, "
        f"broker {cpu.get('broker', '—')}, other {cpu.get('other', '—')} cores"
    )


def _best_step(presence: dict[str, Any]) -> dict[str, Any] | None:
    steps = [s for s in presence.get("steps", []) if s.get("notifications_per_s_steady")]
    return max(steps, key=lambda s: s["notifications_per_s_steady"], default=None)


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    presence = results.get("presence")
    if not presence:
        return []
    out: list[Verdict] = []
    flood = presence.get("flood")
    if flood and flood.get("handled_per_s"):
        out.append(
            Verdict(
                f"presence events/s the processor handled ({flood['events']:,} heartbeats "
                "straight to the topic)",
                f"{flood['handled_per_s']:,.0f} events/s",
                TARGET,
                None,
                f"produced at {flood['produced_per_s']:,.0f}/s; {_cpu(flood)}; "
                f"{flood['processor_us_per_event']} µs of processor CPU per event net of idle "
                f"(≈ {flood['events_per_processor_core_s']} events/s per free core)",
            )
        )
    step = _best_step(presence)
    if step is not None:
        on, off = step["online_after_reconnect_ms"], step["offline_after_timeout_ms"]
        out.append(
            Verdict(
                f"presence notifications/s, {presence['sockets']:,} sockets "
                f"({presence['users']:,} users) each watching {presence['watch']}",
                f"{step['notifications_per_s_steady']:,.0f} frames/s",
                TARGET,
                None,
                f"{step['users_per_s']:g} users/s offline and back; online frame p50/p99 "
                f"{fmt_ms(on['p50'])}/{fmt_ms(on['p99'])} after the reconnect; offline "
                f"{fmt_ms(off['p50'])}/{fmt_ms(off['p99'])} after the timeout; "
                f"{step['steady_watchers_received']:,}/{step['steady_watchers_expected']:,} "
                "expected frames",
            )
        )
    return out


def details(results: dict[str, Any]) -> list[str]:
    presence = results.get("presence")
    if not presence or "connect" not in presence:
        return []
    connect, hold = presence["connect"], presence.get("hold")
    lines = [
        "",
        f"## Presence ({presence['users']:,} users in {presence['groups']} groups, "
        f"{presence['sockets']:,} sockets each watching {presence['watch']} co-members, "
        f"timeout {presence['timeout_s']:g} s)",
        "",
        f"- Connect: {connect['held']:,} sockets held, errors {connect['errors'] or 'none'}; "
        f"snapshots {connect['subscribed']['snapshot_frames']:,}/"
        f"{connect['subscribed']['expected']:,} frames; error frames "
        f"{connect['subscribed']['error_frames'] or 'none'}.",
    ]
    if hold:
        lines.append(
            f"- Idle and heartbeating for {hold['seconds']} s: the processor handled "
            f"{hold['events_per_s']:,} events/s ({_cpu(hold)})."
        )
    flood = presence.get("flood")
    if flood:
        lines.append(
            f"- Ceiling: {flood['events']:,} heartbeats produced straight to the topic in "
            f"{flood['produce_s']} s ({flood['produced_per_s']:,}/s); the processor's committed "
            f"offsets caught up after {flood['caught_up_s']} s: {flood['handled_per_s']} "
            f"events/s on average, {flood['peak_handled_per_s']}/s at best over 0.5 s "
            f"({_cpu(flood)}; load average {flood['loadavg_1m']}). Net of its idle "
            f"{flood['processor_idle_cores']} cores, the processor spent "
            f"{flood['processor_us_per_event']} µs of CPU per event, about "
            f"{flood['events_per_processor_core_s']} events/s per free core "
            f"({flood.get('processor_us_per_event_gross')} µs counting all its CPU)."
        )
    if presence.get("steps"):
        lines += [
            "",
            "| users/s offline and back | changes | frames/s (steady; nominal) | peak | online p50 / p99 "
            "| offline after timeout p50 / p99 | frames expected / got | unscheduled "
            "| events/s | CPU (cores) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for s in presence.get("steps", []):
        on, off, proc = (
            s["online_after_reconnect_ms"],
            s["offline_after_timeout_ms"],
            s["processor"],
        )
        lines.append(
            f"| {s['users_per_s']:g} | {s['changes_scheduled']:,} "
            f"| {s['notifications_per_s_steady']}; {s.get('notifications_per_s_nominal')} "
            f"| {s['notifications_per_s_peak']:,} "
            f"| {fmt_ms(on['p50'])} / {fmt_ms(on['p99'])} "
            f"| {fmt_ms(off['p50'])} / {fmt_ms(off['p99'])} "
            f"| {s['steady_watchers_expected']:,} / {s['steady_watchers_received']:,} "
            f"| {s['unscheduled_changes']} | {proc['events_per_s']} | {_cpu(proc)} |"
        )
    return lines


def plot(results: dict[str, Any], prefix: Path) -> str | None:
    """Frames/s over each churn step, and the processor's rate during the flood."""
    presence = results.get("presence")
    if not presence or not presence.get("steps"):
        return None
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in presence["steps"]:
        series = s["notifications_per_s_series"]
        left.plot(range(len(series)), series, label=f"{s['users_per_s']:g} users/s")
    left.set_xlabel("seconds since the step's first close")
    left.set_ylabel("presence frames/s, all sockets")
    left.set_title(
        f"notifications: {presence['sockets']:,} sockets, {presence['watch']} watched each"
    )
    left.axvline(presence["timeout_s"], color="grey", linestyle=":", label="first offline due")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    flood = presence.get("flood") or {}
    points = flood.get("handled_per_s_series") or []
    if points:
        right.plot([t for t, _ in points], [r for _, r in points], "o-", markersize=3)
        right.axhline(flood["produced_per_s"], color="grey", linestyle=":", label="produced/s")
        right.legend(fontsize=8)
    right.set_xlabel("seconds since the flood began")
    right.set_ylabel("events/s committed by the processor")
    right.set_title("presence events: processor ceiling")
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    path = prefix.with_name(prefix.name + "-presence.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
