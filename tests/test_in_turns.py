"""Handlers that decode a gathered batch record by record give the loop a turn every
TURN_BYTES (processors/consumer.py `in_turns`), so a batch of huge texts never holds up
delivery on the same loop for its whole length."""

from __future__ import annotations

import asyncio

from processors.consumer import TURN_BYTES, in_turns


async def test_a_batch_of_huge_records_is_decoded_a_slice_at_a_time() -> None:
    """`in_turns` (processors/consumer.py), as the notifier and the indexer read their gathered
    batches: the loop gets a turn after every TURN_BYTES, so another task runs in between."""
    record = b"x" * (TURN_BYTES // 2)
    seen: list[str] = []
    started: list[asyncio.Future[None]] = []

    async def other() -> None:
        seen.append("other")

    async def read() -> None:
        async for raw in in_turns([record] * 4):
            seen.append(str(len(raw)))
            if len(seen) == 1:
                started.append(asyncio.ensure_future(other()))  # runs at the next turn

    await read()
    half = str(TURN_BYTES // 2)
    assert seen == [half, half, "other", half, half]
    await asyncio.gather(*started)
