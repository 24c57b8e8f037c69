"""The Grafana dashboard and the Prometheus alert rules of infra/ (docs/operations.md §3) name
only metrics a running Parley serves, the rules and the scrape configuration pass `promtool`
(Debian's `prometheus` package; `make test` installs it), and the metrics they rest on that
are not counters of the obvious kind (consumer lag, send latency, search refusals) measure what
they say."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client import REGISTRY

from gateway.errors import ApiError
from gateway.search_gate import SearchGate
from parley_client import Client
from tests.conftest import Api, eventually, handled
from tests.stack import Process, Stack
from tests.test_partitions import _wait_for_lock_waiter
from topics.definitions import messages_topic

INFRA = Path(__file__).parent.parent / "infra"
DASHBOARD = INFRA / "grafana" / "dashboards" / "parley.json"
# Series Prometheus makes itself for every target, not served by any /metrics.
PROMETHEUS_MADE = {"up"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects. Strict: strings, label matchers, ranges
    and label lists go first; then every name not called as a function and not a keyword is
    a metric. Anything the extraction takes wrongly for a metric fails the test, never passes
    it."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?", " ", text)
    names = set()
    for found in _NAME.finditer(text):
        if text[found.end() :].lstrip().startswith("("):
            continue  # a function
        if found.group().lower() not in _KEYWORDS:
            names.add(found.group())
    # Cross-check: every Parley metric the raw text names was found.
    assert set(re.findall(r"\bparley_[a-z0-9_]+", re.sub(r'"[^"]*"', "", expr))) <= names
    return names


def equality_matchers(expr: str) -> list[tuple[str, dict[str, str]]]:
    """The selectors of an expression with label matchers: (metric, {label: value}) of their
    `=` matchers on labels a process serves (Prometheus adds `job` and `instance`)."""
    out = []
    for name, body in _SELECTOR.findall(expr):
        labels = {
            label: value
            for label, op, value in _MATCHER.findall(body)
            if op == "=" and label not in ("job", "instance")
        }
        out.append((name, labels))
    return out


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((INFRA / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def served_series(text: str) -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of every sample of a /metrics page."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = _NAME.match(line)
        assert found is not None, line
        rest = line[found.end() :]
        labels = dict((k, v) for k, _, v in _MATCHER.findall(rest.split("}")[0]))
        out.append((found.group(), labels))
    return out


def promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, (
        "promtool is missing: `make test` installs Debian's `prometheus` package, which has it"
    )
    return path


def test_the_scrape_config_and_alert_rules_pass_promtool() -> None:
    # `check config` checks the rule files it names too.
    checked = subprocess.run(
        [promtool(), "check", "config", "prometheus.yml"],
        cwd=INFRA,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr
    # The alerts fire on made-up series as they should, and not otherwise.
    tested = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yml"],
        cwd=INFRA,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_dashboard_queries_the_provisioned_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    source = yaml.safe_load((INFRA / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (uid,) = [d["uid"] for d in source["datasources"]]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert panels and all(p["targets"] for p in panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(t["datasource"]["uid"] == uid and t["expr"] for t in panel["targets"])
    # What docs/operations.md §3 says to watch is on it.
    text = " ".join(dashboard_exprs())
    for watched in (
        "parley_processor_consumer_lag",
        "parley_processor_events_dead_lettered_total",
        "parley_gateway_slow_consumers_closed_total",
        "parley_gateway_send_seconds_bucket",
        "parley_gateway_searches_refused_total",
    ):
        assert watched in text


def test_the_metric_name_extraction_is_strict() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{le="1", x=~"y"}[$__rate_interval])))'
        " > 1e3 and on (instance) b_total offset 5m unless c"
    ) == {"a_bucket", "b_total", "m", "c"}  # `5m` after offset: taken, so it would fail
    assert metric_names("min_over_time(sum by (topic) (lag)[10m:1m]) > 1000") == {"lag"}
    assert equality_matchers('rate(x{code="internal", job=~"p.*"}[5m])') == [
        ("x", {"code": "internal"})
    ]


async def test_every_metric_the_dashboard_and_rules_name_exists_on_a_running_stack(
    api: Api, stack: Stack, gateway: Process
) -> None:
    # Traffic first: a send, its delivery, an error frame.
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    await socket.accepted(await socket.send_message(channel, "metrics"))
    await handled(socket)
    await socket.close()

    # A running one: earlier tests kill processors and start others.
    processor = next(
        p for p in reversed(stack.processes) if p.role == "processor" and p.popen.poll() is None
    )
    served: list[tuple[str, dict[str, str]]] = []
    for process in (gateway, processor):
        async with Client(process.url) as client:
            served += served_series(await client.metrics())
    names = {name for name, _ in served}

    exprs = dashboard_exprs() + rule_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert len(used) >= 15
    assert used - names <= PROMETHEUS_MADE, sorted(used - names - PROMETHEUS_MADE)
    # A matcher such as `type="send"` or `reason="busy"` selects a series that exists.
    for expr in exprs:
        for name, labels in equality_matchers(expr):
            if name in PROMETHEUS_MADE:
                continue
            assert any(n == name and labels.items() <= have.items() for n, have in served), (
                name,
                labels,
            )
    # `up` has the jobs the rule names.
    config = yaml.safe_load((INFRA / "prometheus.yml").read_text())
    jobs = {c["job_name"] for c in config["scrape_configs"]}
    assert {"parley-gateway", "parley-processor"} <= jobs


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        found = _NAME.match(line)
        if found is None or found.group() != name:
            continue
        have = dict((k, v) for k, _, v in _MATCHER.findall(line.split("}")[0]))
        if labels.items() <= have.items():
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not served")


async def _scrape(process: Process, name: str, **labels: str) -> float:
    async with Client(process.url) as client:
        text = await client.metrics()
    return _value(text, name, **labels)


async def test_each_send_is_timed_from_its_frame_to_its_accepted(
    api: Api, gateway: Process
) -> None:
    before = await _scrape(gateway, "parley_gateway_send_seconds_count")
    a, b = await api.new_device(), await api.new_device()
    channel = await api.direct(a, b.user_id)
    socket = await api.connect(a)
    for i in range(5):
        await socket.accepted(await socket.send_message(channel, f"timed {i}"))
    await socket.close()
    assert await _scrape(gateway, "parley_gateway_send_seconds_count") >= before + 5


async def test_each_refused_search_is_counted_by_its_reason() -> None:
    def count(reason: str) -> float:
        value = REGISTRY.get_sample_value(
            "parley_gateway_searches_refused_total", {"reason": reason}
        )
        assert value is not None
        return value

    before = {r: count(r) for r in ("in_progress", "rate", "busy")}
    gate = SearchGate(rate_per_s=0.001, burst=2, concurrency=1)
    async with gate.admit("a"):
        for user in ("a", "b"):  # a: its search in progress; b: the gateway's one place taken
            with pytest.raises(ApiError):
                async with gate.admit(user):
                    pass
    async with gate.admit("a"):  # its second token
        pass
    with pytest.raises(ApiError):
        async with gate.admit("a"):  # no token left
            pass
    assert {r: count(r) - before[r] for r in before} == {"in_progress": 1, "busy": 1, "rate": 1}


async def test_consumer_lag_counts_the_records_a_held_up_partition_has_not_handled(
    api: Api, stack: Stack
) -> None:
    topic = messages_topic(stack.settings).name

    async def lag() -> float:
        # Each worker counts the partitions it owns: the sum over the live ones.
        live = [p for p in stack.processes if p.role == "processor" and p.popen.poll() is None]
        return sum([await _scrape(p, "parley_processor_consumer_lag", topic=topic) for p in live])

    alice, bob = await api.new_device("la"), await api.new_device("lb")
    channel = await api.direct(alice, bob.user_id)
    socket = await api.connect(alice)
    await eventually(lambda: _is(lag(), 0), 30, "no lag before")

    # A transaction holds the send's claim: the partition's batch waits on its row lock (as in
    # tests/test_partitions.py), and the sends after it in the channel wait behind it.
    blocker_id = uuid.uuid4().hex
    async with await psycopg.AsyncConnection.connect(stack.settings.postgres_dsn) as blocker:
        await blocker.execute(
            "INSERT INTO message_sends (sender_device_id, client_msg_id, channel_id, message_id)"
            " VALUES (%s, %s, %s, 1)",
            (alice.device_id, blocker_id, channel),
        )
        await socket.accepted(await socket.send_message(channel, "held", blocker_id))
        await _wait_for_lock_waiter(stack.settings.postgres_dsn)
        for i in range(10):
            await socket.accepted(await socket.send_message(channel, f"behind {i}"))
        await eventually(lambda: _at_least(lag(), 11), 30, "the lag to count the held records")
        await blocker.rollback()

    await socket.collect_messages(channel, 11)
    await eventually(lambda: _is(lag(), 0), 30, "the lag to drain")
    await socket.close()


async def _is(value: Any, expected: float) -> bool:
    return bool(await value == expected)


async def _at_least(value: Any, expected: float) -> bool:
    return bool(await value >= expected)
