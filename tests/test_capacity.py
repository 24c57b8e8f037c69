"""The capacity simulation's placement models (pure Python, no stack): Kafka's replica
assignment and leader election on a broker loss, and inbox partitions on a gateway fleet by
`gateway.registry.rank`."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from capacity.simulation import assign_replicas, gateway_fleet, leaders, place
from gateway.registry import Gateway, rank


@pytest.mark.parametrize(("brokers", "partitions"), [(3, 512), (9, 512), (9, 4096), (12, 100)])
def test_replicas_are_distinct_and_leaders_spread_within_one(brokers: int, partitions: int) -> None:
    ids = list(range(1, brokers + 1))
    for seed in range(5):
        replicas = assign_replicas(partitions, ids, 3, random.Random(seed))
        assert len(replicas) == partitions
        assert all(len(set(r)) == 3 and set(r) <= set(ids) for r in replicas)
        led = Counter(leaders(replicas))
        counts = [led[b] for b in ids]
        assert max(counts) - min(counts) <= 1, counts
        # Followers spread too: every broker holds about RF / n of the replicas.
        held = Counter(b for r in replicas for b in r)
        assert max(held.values()) - min(held.values()) <= max(3, partitions // brokers // 10)


def test_kafka_assignment_for_a_fixed_start() -> None:
    """Five brokers, start index 0 and shift 0 give the layout Kafka's AdminUtils documents:
    p0 [0,1,2], p1 [1,2,3], ..., p5 [0,2,3] (the shift grows every n partitions)."""

    class Fixed(random.Random):
        def randrange(self, *args: object, **kwargs: object) -> int:
            return 0

    replicas = assign_replicas(10, [0, 1, 2, 3, 4], 3, Fixed())
    assert replicas[:5] == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1]]
    assert replicas[5:] == [[0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2]]


@pytest.mark.parametrize("brokers", [3, 9])
def test_a_lost_broker_leads_nothing_and_its_leaderships_go_to_the_next_replica(
    brokers: int,
) -> None:
    ids = list(range(1, brokers + 1))
    replicas = assign_replicas(4096, ids, 3, random.Random(7))
    before = leaders(replicas)
    dead = before[123]
    after = leaders(replicas, dead)
    assert dead not in after
    moved = [p for p in range(len(replicas)) if before[p] != after[p]]
    assert moved == [p for p in range(len(replicas)) if before[p] == dead]
    assert all(after[p] == replicas[p][1] for p in moved)
    assert all(after[p] == replicas[p][0] for p in range(len(replicas)) if p not in moved)
    # The dead broker's leaderships spread over the survivors, not onto one of them.
    took = Counter(after[p] for p in moved)
    assert len(took) == brokers - 1


def test_750_gateways_each_partition_has_one_first_choice_and_a_loss_moves_only_its_own() -> None:
    gateways = gateway_fleet(750)
    partitions = 1024
    placed = place(gateways, partitions)
    ids = {g.gateway_id for g in gateways}
    for p in range(0, partitions, 97):
        order = rank(gateways, p)
        assert placed.first[p] == order[0].gateway_id
        assert placed.second[p] == order[1].gateway_id
    assert len(placed.first) == partitions and set(placed.first) <= ids
    owned = placed.owned()
    assert sum(len(ps) for ps in owned.values()) == partitions
    busiest = max(owned, key=lambda g: len(owned[g]))
    survivors = [g for g in gateways if g.gateway_id != busiest]
    recomputed = [rank(survivors, p)[0].gateway_id for p in range(partitions)]
    assert recomputed == placed.without(busiest)
    moved = {p for p in range(partitions) if recomputed[p] != placed.first[p]}
    assert moved == set(owned[busiest])
    # Adding a gateway moves partitions only onto the new one.
    grown = [
        rank([*gateways, Gateway("gw-new:8080", "", 0, 0, 0)], p)[0].gateway_id
        for p in range(0, partitions, 7)
    ]
    assert grown == placed.grown[::7]
    assert {g for p, g in enumerate(placed.grown) if g != placed.first[p]} <= {"gw-new:8080"}
