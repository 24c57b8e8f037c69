"""Batches of a Faust stream that cost nothing while the stream is idle.

Faust's `Stream.take(max_, within)` wakes every `within` seconds whether or not an event came:
with the pipeline's 2 ms that is 500 wake-ups a second per agent on an idle worker, the largest
part of an idle processor's CPU. `batches` is the same buffer with one change: a batch's clock
starts when its first event arrives, so an idle stream sleeps until one does, and no event waits
in the buffer longer than `within`.

Acknowledgement is `take`'s: a batch's events are acked (their offsets become committable) only
after the consumer's loop body finished with the batch, so a crash mid-batch repeats it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


async def batches(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Yield lists of up to `max_` values from a Faust stream: a list is yielded when it is full
    or `within` seconds after its first value arrived, whichever comes first."""
    buffer: list[Any] = []
    events: list[Any] = []
    started = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    # Set while the consumer holds a batch: the drainer must not add to the list being read.
    reading: asyncio.Future[None] | None = None

    async def add_to_buffer(value: Any) -> Any:
        nonlocal reading
        if reading is not None:
            await reading
        buffer.append(value)
        event = stream.current_event
        if event is None:
            raise RuntimeError("a stream value arrived without its event")
        events.append(event)
        started.set()
        if len(buffer) >= max_:
            # Strictly `max_`: wait until the consumer took this batch before adding more.
            full.set()
            consumed.clear()
            await stream.wait(consumed)
        return value

    # The stream acks nothing by itself; the events of a batch are acked below, after use.
    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    while not stream.should_stop:
        # No timeout: an idle stream sleeps here until an event arrives (or the stream stops).
        await stream.wait_for_stopped(started)
        if not buffer:
            continue
        await stream.wait_for_stopped(full, timeout=within)
        reading = asyncio.get_running_loop().create_future()
        try:
            yield list(buffer)
        finally:
            buffer.clear()
            for event in events:
                await stream.ack(event)
            events.clear()
            started.clear()
            full.clear()
            reading.set_result(None)
            reading = None
            consumed.set()
