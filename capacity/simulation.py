"""`python -m capacity`: does Parley's partitioning hold at 50 million daily active users?

A seeded simulation, with no stack and no broker (it finishes in seconds). It places keys on
partitions with Parley's own mappings: channels on `parley.messages.v1` and users on
`parley.inbox.v1` with `topics.definitions.key_partition` (Kafka's murmur2), and inbox
partitions on gateways with `gateway.registry.rank` (rendezvous hashing); then it places the
messages and inbox partitions on Kafka brokers with replication factor 3 as Kafka does without
racks, and moves the leaderships of a lost broker. It prints the Markdown tables that
docs/capacity.md quotes.

Activity is Zipf-distributed by rank: the channel of rank r sends in proportion to r^-s, capped
at what one channel can carry (its members are rate-limited). The head, the busiest
`HEAD_KEYS` channels and users, is hashed key by key; the tail, many millions of light keys, is
added to each partition as a normal draw with the tail's mean and variance per partition (a sum
of that many small independent loads is normal to well within the figures printed). Every
partition count and worker count below is a parameter, not a measurement; the sizing inputs
from the benchmarks are in docs/capacity.md.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import typer

from gateway.registry import Gateway, announce_interval_s, rank
from topics.definitions import key_partition

HEAD_KEYS = 100_000
FULL_HASH = 1 << 31
"""key_partition(key, 2**31) is murmur2(key) & 0x7FFFFFFF itself, so `that % P` is exactly
key_partition(key, P) for every P (checked at start): each key is hashed once."""
EPOCH_SPAN_MS = 2 * 365 * 86_400_000


@dataclass(frozen=True)
class Population:
    """The assumptions; docs/capacity.md states why each value."""

    dau: int = 50_000_000
    peak_online: float = 0.20
    """Fraction of the day's users connected at the busiest minute."""
    sockets_per_online_user: float = 1.3
    messages_per_user_day: float = 40.0
    peak_to_average: float = 2.5
    direct_channels: int = 125_000_000
    """Direct channels with at least one message that day (5 per user, 2 users each)."""
    group_channels: int = 8_000_000
    group_share: float = 0.30
    """Share of messages sent in groups; the rest go to direct channels."""
    group_sizes: tuple[tuple[int, int, float], ...] = ((3, 20, 0.8), (21, 100, 0.2))
    """(smallest, largest, share of group messages): sizes uniform within each band."""
    zipf_s: float = 1.0
    """Channels' activity by rank."""
    user_zipf_s: float = 0.8
    """Users' received messages by rank: a sum over a user's channels, so less skewed."""
    channel_cap_per_s: float = 20.0
    """The busiest a channel gets: about one member at the per-device send limit."""
    user_cap_per_s: float = 200.0
    """The most a user receives per second (a member of many busy groups)."""

    def peak_sends_per_s(self) -> float:
        return self.dau * self.messages_per_user_day / 86_400 * self.peak_to_average

    def peak_sockets(self) -> int:
        return round(self.dau * self.peak_online * self.sockets_per_online_user)

    def mean_group_size(self) -> float:
        return sum((lo + hi) / 2 * share for lo, hi, share in self.group_sizes)

    def deliveries_per_send(self) -> float:
        """Recipients per message (the sender excluded), averaged over the mix."""
        return (1 - self.group_share) * 1 + self.group_share * (self.mean_group_size() - 1)


@dataclass
class Load:
    """The head's keys (with their loads) and the tail as a total and a sum of squares."""

    keys: list[str]
    loads: list[float]
    tail_sum: float
    tail_sq: float

    def per_partition(self, partitions: int, rng: random.Random) -> list[float]:
        out = [0.0] * partitions
        for h, load in zip(self.hashes, self.loads, strict=True):
            out[h % partitions] += load
        mean = self.tail_sum / partitions
        sd = math.sqrt(self.tail_sq * (1 / partitions) * (1 - 1 / partitions))
        return [x + max(rng.gauss(mean, sd), 0.0) for x in out]

    @cached_property
    def hashes(self) -> list[int]:
        return [key_partition(k, FULL_HASH) for k in self.keys]

    def total(self) -> float:
        return sum(self.loads) + self.tail_sum


def snowflake_ids(rng: random.Random, n: int) -> list[str]:
    """Ids shaped like `schemas.ids.new_id()`: milliseconds since the epoch << 22 | 22 random
    bits, in decimal (the hash sees the same kind of strings as in production)."""
    return [str((rng.randrange(EPOCH_SPAN_MS) << 22) | rng.getrandbits(22)) for _ in range(n)]


def _power_sum(lo: float, hi: float, exponent: float) -> float:
    """Σ r^-exponent for r in [lo, hi], by the integral over [lo - 0.5, hi + 0.5]."""
    a, b = lo - 0.5, hi + 0.5
    if abs(exponent - 1.0) < 1e-9:
        return math.log(b / a)
    return float(b ** (1 - exponent) - a ** (1 - exponent)) / (1 - exponent)


def zipf_load(
    rng: random.Random, n: int, total: float, s: float, cap: float, head: int = HEAD_KEYS
) -> Load:
    """`n` keys whose loads follow rank^-s, capped at `cap`, scaled to sum to `total`."""
    head = min(head, n)
    scale = total / _power_sum(1, n, s)
    powers = [r**-s for r in range(1, head + 1)]
    rest = _power_sum(head + 1, n, s) if n > head else 0.0
    for _ in range(100):  # raise the scale until the capped loads sum to `total` again
        capped = sum(min(scale * x, cap) for x in powers)
        factor = total / (capped + scale * rest)
        scale *= factor
        if abs(factor - 1) < 1e-12:
            break
    loads = [min(scale * r**-s, cap) for r in range(1, head + 1)]
    tail_sum = scale * _power_sum(head + 1, n, s) if n > head else 0.0
    tail_sq = scale**2 * _power_sum(head + 1, n, 2 * s) if n > head else 0.0
    return Load(snowflake_ids(rng, head), loads, tail_sum, tail_sq)


def skew(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, max / mean, p99 / mean) of per-partition or per-process loads."""
    mean = statistics.fmean(values)
    ordered = sorted(values)
    p99 = ordered[min(math.ceil(0.99 * len(ordered)), len(ordered)) - 1]
    return mean, max(values) / mean, p99 / mean


def expected_partitions(members: int, partitions: int) -> float:
    """Distinct inbox partitions among a channel's members: one inbox record each."""
    return partitions * (1 - (1 - 1 / partitions) ** members)


def inbox_records_per_send(pop: Population, partitions: int) -> float:
    """Inbox records a message costs, averaged over the channel mix (a direct channel's two
    members, sender included: the sender's other devices get the message too)."""
    direct = expected_partitions(2, partitions)
    group = 0.0
    for lo, hi, share in pop.group_sizes:
        sizes = range(lo, hi + 1)
        group += share * statistics.fmean(expected_partitions(m, partitions) for m in sizes)
    return (1 - pop.group_share) * direct + pop.group_share * group


# --- consumer-group assignment ------------------------------------------------------------


def round_robin(partitions: int, workers: list[str]) -> dict[int, str]:
    """Kafka's RoundRobinAssignor: sorted members, partition p to member p mod n."""
    members = sorted(workers)
    return {p: members[p % len(members)] for p in range(partitions)}


def sticky(partitions: int, workers: list[str], before: dict[int, str] | None) -> dict[int, str]:
    """Faust's assignor (faust/assignor/copartitioned_assignor.py): each worker keeps what it
    had up to floor(P / n) partitions, and the rest go round-robin to the least loaded."""
    floor_cap = partitions // len(workers)
    mine: dict[str, list[int]] = {w: [] for w in workers}
    for p, w in sorted((before or {}).items()):
        if w in mine and len(mine[w]) < floor_cap:
            mine[w].append(p)
    taken = {p for ps in mine.values() for p in ps}
    for p in range(partitions):
        if p not in taken:
            target = min(workers, key=lambda w: (len(mine[w]), w))
            mine[target].append(p)
    return {p: w for w, ps in mine.items() for p in ps}


def moved(before: dict[int, str], after: dict[int, str]) -> float:
    return sum(1 for p in before if before[p] != after[p]) / len(before)


# --- the report ------------------------------------------------------------------------------


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _check_mapping(keys: list[str], hashes: list[int]) -> None:
    for key, h in list(zip(keys, hashes, strict=True))[:2000]:
        for p in (8, 16, 100, 1024):
            assert h % p == key_partition(key, p), (key, p)


def messages_section(pop: Population, channels: Load, rng: random.Random) -> list[str]:
    rate = pop.peak_sends_per_s()
    hot = channels.loads[0]
    lines = [
        "### Channels on `parley.messages.v1` (key `channel_id`)",
        "",
        f"{pop.direct_channels + pop.group_channels:,} active channels, Zipf s={pop.zipf_s:g}, "
        f"capped at {pop.channel_cap_per_s:g} msgs/s; {rate:,.0f} msgs/s at the peak; the "
        f"hottest channel {hot:g} msgs/s, the 1,000th {channels.loads[999]:.2f}.",
        "",
        _row(
            "partitions",
            "mean msgs/s per partition",
            "max / mean",
            "p99 / mean",
            "hottest channel, share of its partition",
        ),
        "|---|---|---|---|---|",
    ]
    for partitions in (8, 64, 256, 512, 1024, 4096):
        loads = channels.per_partition(partitions, rng)
        mean, top, p99 = skew(loads)
        home = loads[channels.hashes[0] % partitions]
        lines.append(
            _row(partitions, f"{mean:,.0f}", f"{top:.3f}", f"{p99:.3f}", f"{hot / home:.1%}")
        )
    return lines


def inbox_section(pop: Population, users: Load, rng: random.Random) -> list[str]:
    deliveries = users.total()
    lines = [
        "",
        "### Users on `parley.inbox.v1` (recipients by `murmur2(user_id)`)",
        "",
        f"{deliveries:,.0f} deliveries/s at the peak ({pop.deliveries_per_send():.2f} per "
        f"message: {pop.group_share:.0%} of messages in groups of mean size "
        f"{pop.mean_group_size():.1f}); users Zipf s={pop.user_zipf_s:g}, capped at "
        f"{pop.user_cap_per_s:g}/s.",
        "",
        _row(
            "partitions",
            "inbox records per message",
            "records/s per partition",
            "deliveries/s per partition",
            "max / mean",
            "p99 / mean",
        ),
        "|---|---|---|---|---|---|",
    ]
    for partitions in (16, 256, 1024, 4096, 16384):
        loads = users.per_partition(partitions, rng)
        mean, top, p99 = skew(loads)
        records = inbox_records_per_send(pop, partitions) * pop.peak_sends_per_s()
        lines.append(
            _row(
                partitions,
                f"{inbox_records_per_send(pop, partitions):.2f}",
                f"{records / partitions:,.0f}",
                f"{mean:,.0f}",
                f"{top:.3f}",
                f"{p99:.3f}",
            )
        )
    return lines


def gateway_fleet(count: int) -> list[Gateway]:
    return [Gateway(f"gw-{i:04d}:8080", "", 0, 0, 0) for i in range(count)]


@dataclass
class Placement:
    """Inbox partitions on a fleet: each partition's first and second choice by
    `gateway.registry.rank`, and the first choice of each with one gateway added."""

    first: list[str]
    second: list[str]
    grown: list[str]

    def owned(self) -> dict[str, list[int]]:
        return _by_gateway(self.first)

    def without(self, gone: str) -> list[str]:
        """First choices once `gone` has left: its partitions go to their second choice, the
        others stay (a rendezvous order without one gateway is the order without it)."""
        return [s if f == gone else f for f, s in zip(self.first, self.second, strict=True)]


def _by_gateway(first: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p, g in enumerate(first):
        out.setdefault(g, []).append(p)
    return out


def place(gateways: list[Gateway], partitions: int) -> Placement:
    """One `rank` call per partition over the fleet; the added gateway is ranked against the
    first choice only (each gateway's weight for a partition depends on it alone)."""
    new = Gateway("gw-new:8080", "", 0, 0, 0)
    first: list[str] = []
    second: list[str] = []
    grown: list[str] = []
    for p in range(partitions):
        order = rank(gateways, p)
        first.append(order[0].gateway_id)
        second.append(order[1].gateway_id)
        grown.append(rank([order[0], new], p)[0].gateway_id)
    return Placement(first, second, grown)


def _share_moved(before: list[str], after: list[str]) -> float:
    return sum(a != b for a, b in zip(before, after, strict=True)) / len(before)


def gateway_section(pop: Population, fleets: Sequence[int]) -> list[str]:
    sockets = pop.peak_sockets()
    lines: list[str] = []
    losses = [
        "",
        "### A gateway lost: the busiest (most inbox partitions) of each fleet",
        "",
        f"Its sockets reconnect to their inbox partitions' second choices (sockets per partition "
        f"= {sockets:,} / partitions), which also re-follow those partitions.",
        "",
        _row(
            "gateways",
            "inbox partitions",
            "its partitions to re-follow",
            "its sockets to reconnect elsewhere",
            "gateways taking them",
            "most partitions to one",
            "busiest survivor's sockets / mean before, before → after",
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for count in fleets:
        gateways = gateway_fleet(count)
        lines += [
            "",
            f"### Inbox partitions on gateways (rendezvous, `gateway.registry.rank`), {count} "
            f"gateways for {sockets:,} sockets",
            "",
            _row(
                "inbox partitions",
                "partitions per gateway",
                "sockets per gateway, max / mean",
                "moved when one gateway is added",
                "moved when one is removed",
            ),
            "|---|---|---|---|---|",
        ]
        for partitions in (256, 1024, 4096, 16384):
            if partitions < count:
                continue
            placed = place(gateways, partitions)
            per = {g.gateway_id: 0 for g in gateways}
            for g in placed.first:
                per[g] += 1
            _, top, _ = skew(list(per.values()))
            gone = gateways[0].gateway_id
            lines.append(
                _row(
                    partitions,
                    f"{partitions / count:.1f}",
                    f"{top:.2f}",
                    f"{_share_moved(placed.first, placed.grown):.2%}",
                    f"{_share_moved(placed.first, placed.without(gone)):.2%}"
                    f" (its {per[gone]} partitions)",
                )
            )
            busiest = max(per, key=lambda g: (per[g], g))
            taken = [placed.second[p] for p in placed.owned()[busiest]]
            after = {g: n for g, n in per.items() if g != busiest}
            for g in taken:
                after[g] += 1
            losses.append(
                _row(
                    count,
                    partitions,
                    per[busiest],
                    f"{per[busiest] * sockets / partitions:,.0f}",
                    len(set(taken)),
                    max(taken.count(g) for g in set(taken)),
                    f"{max(per[g] for g in after) * count / partitions:.2f} → "
                    f"{max(after.values()) * count / partitions:.2f}",
                )
            )
    return lines + losses


def registry_section(
    fleets: Sequence[int], floor_s: float = 2.0, ttl_intervals: int = 3
) -> list[str]:
    """What the gateway registry costs each fleet: every gateway reads every announcement."""
    lines = [
        "",
        "### The gateway registry (`parley.gateways.v1`): every gateway reads every announcement",
        "",
        "| gateways | each announces every | announcements/s | records read/s, whole fleet | a killed gateway stays listed | records read/s at a fixed 2 s |",
        "|---|---|---|---|---|---|",
    ]
    for count in fleets:
        interval = announce_interval_s(count, floor_s)
        rate = count / interval
        lines.append(
            _row(
                count,
                f"{interval:g} s",
                f"{rate:,.0f}",
                f"{rate * count:,.0f}",
                f"{interval * ttl_intervals:g} s",
                f"{count / floor_s * count:,.0f}",
            )
        )
    return lines


def worker_section(channels: Load, partitions: int, workers: int, rng: random.Random) -> list[str]:
    loads = channels.per_partition(partitions, rng)
    names = [f"worker-{i:03d}" for i in range(workers)]
    lines = [
        "",
        f"### {partitions} messages partitions on {workers} processor workers (consumer group)",
        "",
        _row(
            "assignor",
            "busiest worker / mean",
            "moved when one worker is added",
            "moved when one is removed",
        ),
        "|---|---|---|---|",
    ]
    strategies: dict[str, Callable[[list[str], dict[int, str] | None], dict[int, str]]] = {
        "round-robin (Kafka's RoundRobinAssignor)": lambda ws, _: round_robin(partitions, ws),
        "sticky (Faust's assignor)": lambda ws, prev: sticky(partitions, ws, prev),
    }
    for name, assign in strategies.items():
        base = assign(names, None)
        per: dict[str, float] = {w: 0.0 for w in names}
        for p, w in base.items():
            per[w] += loads[p]
        _, top, _ = skew(list(per.values()))
        grown = assign([*names, "worker-new"], base)
        shrunk = assign(names[1:], base)
        lines.append(
            _row(name, f"{top:.3f}", f"{moved(base, grown):.1%}", f"{moved(base, shrunk):.1%}")
        )
    return lines


# --- partitions on brokers --------------------------------------------------------------------

REPLICATION_FACTOR = 3
MESSAGE_RECORD_BYTES = 450
"""A `message.send` record with a 90-character text (docs/capacity.md, the load at the peak)."""
INBOX_RECORD_BYTES = 550
"""An inbox record: the message once, plus its partition's recipient ids."""


def assign_replicas(
    partitions: int, brokers: Sequence[int], replication_factor: int, rng: random.Random
) -> list[list[int]]:
    """Kafka's replica placement without racks, as `AdminUtils.assignReplicasToBrokers` does
    it (`assignReplicasToBrokersRackUnaware`, core/src/main/scala/kafka/admin/AdminUtils.scala):
    a random start index and a random replica shift; partition p's first replica, its
    preferred leader, is broker (p + start) mod n, the shift grows by one every n partitions,
    and replica j + 1 is 1 + (shift + j) mod (n - 1) brokers after the first."""
    n = len(brokers)
    if not 1 <= replication_factor <= n:
        raise ValueError(f"replication factor {replication_factor} with {n} brokers")
    start_index = rng.randrange(n)
    shift = rng.randrange(n)
    out: list[list[int]] = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start_index) % n
        followers = [(first + 1 + (shift + j) % (n - 1)) % n for j in range(replication_factor - 1)]
        out.append([brokers[first], *(brokers[i] for i in followers)])
    return out


def leaders(replicas: list[list[int]], dead: int | None = None) -> list[int]:
    """Each partition's leader: its preferred leader (the first listed replica), or, where that
    broker is `dead`, the next listed replica (every replica in sync: the controller elects the
    first live in-sync replica in the assignment's order)."""
    return [next(b for b in listed if b != dead) for listed in replicas]


@dataclass
class Topic:
    replicas: list[list[int]]
    rates: list[float]
    """Records/s per partition."""
    record_bytes: int

    def bytes_per_s(self, p: int) -> float:
        return self.rates[p] * self.record_bytes


@dataclass
class BrokerLoad:
    """Per broker: records/s led by topic, bytes/s led (client produce), bytes/s written
    (led and followed), and bytes/s sent to followers."""

    led: dict[int, list[float]]
    led_bytes: dict[int, float]
    written: dict[int, float]
    replication_out: dict[int, float]


def broker_load(topics: list[Topic], brokers: Sequence[int], dead: int | None) -> BrokerLoad:
    alive = [b for b in brokers if b != dead]
    load = BrokerLoad(
        {b: [0.0] * len(topics) for b in alive},
        dict.fromkeys(alive, 0.0),
        dict.fromkeys(alive, 0.0),
        dict.fromkeys(alive, 0.0),
    )
    for t, topic in enumerate(topics):
        for p, leader in enumerate(leaders(topic.replicas, dead)):
            size = topic.bytes_per_s(p)
            in_sync = [b for b in topic.replicas[p] if b != dead]
            load.led[leader][t] += topic.rates[p]
            load.led_bytes[leader] += size
            load.replication_out[leader] += size * (len(in_sync) - 1)
            for b in in_sync:
                load.written[b] += size
    return load


def _max_mean(values: dict[int, float], scale: float = 1.0, digits: int = 0) -> str:
    return f"{max(values.values()) / scale:,.{digits}f} / {statistics.fmean(values.values()) / scale:,.{digits}f}"


def broker_section(
    pop: Population,
    channels: Load,
    users: Load,
    broker_counts: Sequence[int],
    rng: random.Random,
    messages_partitions: int = 512,
    inbox_partitions: int = 4096,
) -> list[str]:
    msgs = channels.per_partition(messages_partitions, rng)
    records = inbox_records_per_send(pop, inbox_partitions) * pop.peak_sends_per_s()
    deliveries = users.per_partition(inbox_partitions, rng)
    inbox = [d * records / sum(deliveries) for d in deliveries]
    hottest = max(range(messages_partitions), key=lambda p: msgs[p])
    mb = 1e6
    lines = [
        "",
        f"### {messages_partitions} messages and {inbox_partitions} inbox partitions on brokers "
        f"(replication factor {REPLICATION_FACTOR}, Kafka's placement without racks), before "
        "and after losing the leader of the busiest messages partition",
        "",
        f"Messages {MESSAGE_RECORD_BYTES} B a record, inbox {INBOX_RECORD_BYTES} B (before "
        f"compression); the busiest messages partition carries {msgs[hottest]:,.0f} msgs/s. "
        "Per broker: records/s and MB/s of the partitions it leads (the clients' produce), MB/s "
        "it writes (led and followed), MB/s it sends to followers; max / mean over the live brokers.",
        "",
        _row(
            "brokers",
            "",
            "messages msgs/s led",
            "inbox records/s led",
            "MB/s led",
            "MB/s written",
            "MB/s to followers",
        ),
        "|---|---|---|---|---|---|---|",
    ]
    summary = [
        "",
        _row(
            "brokers",
            "leaders moved (messages, inbox)",
            "busiest broker's MB/s led, before",
            "busiest survivor's, after",
            "increase",
            "busiest survivor / mean before",
        ),
        "|---|---|---|---|---|---|",
    ]
    for count in broker_counts:
        brokers = list(range(1, count + 1))
        topics = [
            Topic(
                assign_replicas(messages_partitions, brokers, REPLICATION_FACTOR, rng),
                msgs,
                MESSAGE_RECORD_BYTES,
            ),
            Topic(
                assign_replicas(inbox_partitions, brokers, REPLICATION_FACTOR, rng),
                inbox,
                INBOX_RECORD_BYTES,
            ),
        ]
        dead = topics[0].replicas[hottest][0]
        before = broker_load(topics, brokers, None)
        after = broker_load(topics, brokers, dead)
        for state, load in (("all up", before), (f"broker {dead} lost", after)):
            lines.append(
                _row(
                    count,
                    state,
                    _max_mean({b: v[0] for b, v in load.led.items()}),
                    _max_mean({b: v[1] for b, v in load.led.items()}),
                    _max_mean(load.led_bytes, mb, 1),
                    _max_mean(load.written, mb, 1),
                    _max_mean(load.replication_out, mb, 1),
                )
            )
        moved_leaders = [
            sum(a != b for a, b in zip(leaders(t.replicas), leaders(t.replicas, dead), strict=True))
            for t in topics
        ]
        top_before = max(before.led_bytes.values())
        top_after = max(after.led_bytes.values())
        summary.append(
            _row(
                count,
                f"{moved_leaders[0]} of {messages_partitions}, {moved_leaders[1]} of "
                f"{inbox_partitions}",
                f"{top_before / mb:.1f}",
                f"{top_after / mb:.1f}",
                f"{top_after / top_before - 1:+.0%}",
                f"{top_after / statistics.fmean(before.led_bytes.values()):.2f}x",
            )
        )
    return lines + summary


def repartition_section(keys: list[str]) -> list[str]:
    hashes = [key_partition(k, FULL_HASH) for k in keys]
    lines = [
        "",
        "### Changing a topic's partition count (keys whose partition changes)",
        "",
        _row("from", "to", "keys moved"),
        "|---|---|---|",
    ]
    for old, new in ((8, 16), (16, 24), (64, 128), (256, 384), (1024, 2048), (1024, 1025)):
        changed = sum(1 for h in hashes if h % old != h % new) / len(hashes)
        lines.append(_row(old, new, f"{changed:.1%}"))
    return lines


def report(
    pop: Population,
    seed: int,
    gateways: Sequence[int],
    workers: int,
    brokers: Sequence[int] = (3, 9),
) -> str:
    rng = random.Random(seed)
    started = time.perf_counter()
    rate = pop.peak_sends_per_s()
    channels = zipf_load(
        rng,
        pop.direct_channels + pop.group_channels,
        rate,
        pop.zipf_s,
        pop.channel_cap_per_s,
    )
    _check_mapping(channels.keys, channels.hashes)
    users = zipf_load(
        rng,
        pop.dau,
        rate * pop.deliveries_per_send(),
        pop.user_zipf_s,
        pop.user_cap_per_s,
    )
    lines = [
        f"Seed {seed}; {pop.dau:,} daily users, {pop.peak_sockets():,} sockets at the peak, "
        f"{rate:,.0f} msgs/s sent at the peak; the busiest {HEAD_KEYS:,} keys hashed one by "
        "one, the rest as a normal tail.",
        "",
    ]
    lines += messages_section(pop, channels, rng)
    lines += inbox_section(pop, users, rng)
    lines += gateway_section(pop, gateways)
    lines += registry_section(gateways)
    lines += worker_section(channels, 256, workers, rng)
    lines += worker_section(channels, 512, workers, rng)
    lines += repartition_section(channels.keys)
    # A random stream of its own: the sections above draw exactly what they drew before.
    lines += broker_section(pop, channels, users, brokers, random.Random(f"brokers/{seed}"))
    lines += ["", f"({time.perf_counter() - started:.1f} s)"]
    return "\n".join(lines)


def capacity(
    seed: Annotated[int, typer.Option(help="Of the random draws.")] = 20261201,
    gateways: Annotated[
        str, typer.Option(help="Gateway fleets, comma-separated (200: 65,000 sockets each).")
    ] = "200,750",
    brokers: Annotated[
        str, typer.Option(help="Kafka broker counts, comma-separated (3: the local cluster).")
    ] = "3,9",
    workers: Annotated[int, typer.Option(min=1, help="Message processor workers.")] = 80,
    zipf_s: Annotated[float, typer.Option(help="Channels' activity by rank.")] = Population.zipf_s,
    user_zipf_s: Annotated[
        float, typer.Option(help="Users' received messages by rank.")
    ] = Population.user_zipf_s,
) -> None:
    """Partition load skew and rebalance cost at 50M daily users (seeded)."""
    pop = Population(zipf_s=zipf_s, user_zipf_s=user_zipf_s)
    print(report(pop, seed, _counts(gateways, 2), workers, _counts(brokers, REPLICATION_FACTOR)))


def _counts(text: str, least: int) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: comma-separated whole numbers") from None
    if not counts or min(counts) < least:
        raise typer.BadParameter(f"{text!r}: each at least {least}")
    return counts
