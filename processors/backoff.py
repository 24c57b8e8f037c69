"""The one backoff of every retry in the processors: capped exponential with full jitter, so
that workers retrying the same failing dependency (a broker, the database) spread out instead of
knocking together."""

from __future__ import annotations

import random

FIRST_S = 0.05
MAX_S = 5.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0 for the first retry): uniform in
    [0, min(MAX_S, FIRST_S * 2**attempt)]."""
    return random.uniform(0, min(MAX_S, FIRST_S * 2 ** min(attempt, 32)))
