"""Properties of `key_partition` (topics/definitions.py): the gateway sends a message to the
partition it names (`channel_partition`, the same function cached), while other records of the
channel (`channel.members`) are left to the producer's own partitioner; a channel stays in
order only if the two always agree."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from gateway.publisher import channel_partition
from topics.definitions import key_partition


@given(st.text(min_size=1, max_size=64), st.integers(min_value=1, max_value=256))
def test_a_key_lands_where_the_producers_partitioner_puts_it(key: str, partitions: int) -> None:
    everywhere = list(range(partitions))
    expected = DefaultPartitioner()(key.encode(), everywhere, everywhere)
    assert key_partition(key, partitions) == expected
    assert channel_partition(key, partitions) == expected
    assert channel_partition(key, partitions) == expected  # and again, from the cache
