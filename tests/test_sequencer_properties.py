"""Properties of the sequencer (processors/sequencer.py), the pipeline's id rule, over any
interleaving of channels and any clock: ids strictly increase per channel, never lie before
their send's millisecond, and a replay from the store's last ids gives the same ids again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.sequencer import Sequencer
from schemas.ids import EPOCH_MS, id_floor

Send = tuple[str, int]  # (channel, sent_at_ms)

sends = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        # Clocks that repeat and go backwards (gateways disagree), around one instant.
        st.integers(min_value=EPOCH_MS + 10_000, max_value=EPOCH_MS + 10_050),
    ),
    max_size=200,
)


class LastIds:
    """What the sequencer reads of a store: each channel's newest id (the store's answer)."""

    def __init__(self, last: dict[str, int] | None = None) -> None:
        self.last = dict(last or {})

    async def last_message_ids(self, channel_ids: Sequence[str]) -> dict[str, int]:
        return {c: self.last[c] for c in channel_ids if c in self.last}


def assign(store: LastIds, batch: list[Send]) -> list[int]:
    async def run() -> list[int]:
        sequencer = Sequencer(store)  # type: ignore[arg-type]
        await sequencer.load({channel for channel, _ in batch})
        ids = [sequencer.next_id(channel, at) for channel, at in batch]
        for (channel, _), message_id in zip(batch, ids, strict=True):
            store.last[channel] = max(store.last.get(channel, 0), message_id)
        return ids

    return asyncio.run(run())


@settings(max_examples=200, deadline=None)
@given(sends)
def test_ids_increase_per_channel_and_never_precede_their_millisecond(batch: list[Send]) -> None:
    ids = assign(LastIds(), batch)
    newest: dict[str, int] = {}
    for (channel, at), message_id in zip(batch, ids, strict=True):
        assert message_id >= id_floor(at)
        assert message_id > newest.get(channel, 0)
        newest[channel] = message_id


@settings(max_examples=200, deadline=None)
@given(sends, st.integers(min_value=0, max_value=200))
def test_a_replay_split_anywhere_into_batches_gives_the_same_ids(
    batch: list[Send], split: int
) -> None:
    # One pass, against two passes whose second starts from what the store holds (a worker
    # that crashed between batches, or a replay that resumes).
    whole = assign(LastIds(), batch)
    store = LastIds()
    split = min(split, len(batch))
    assert assign(store, batch[:split]) + assign(store, batch[split:]) == whole
