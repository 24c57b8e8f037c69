"""The processors' one backoff: jittered, growing, capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.backoff import FIRST_S, MAX_S, backoff


@given(st.integers(min_value=0, max_value=10_000))
def test_a_wait_is_within_its_attempts_cap(attempt: int) -> None:
    assert 0 <= backoff(attempt) <= min(MAX_S, FIRST_S * 2 ** min(attempt, 32))


def test_waits_are_jittered_and_reach_the_cap() -> None:
    first = {backoff(0) for _ in range(50)}
    late = [backoff(20) for _ in range(200)]
    assert len(first) > 1  # not one fixed delay: workers spread out
    assert max(late) > MAX_S / 2 and max(late) <= MAX_S
