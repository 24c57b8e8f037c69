"""Rebuilds the message store from `parley.messages.v1` (SPEC §4, Replay).

Reads every partition from the beginning up to the end offsets seen at start, through the same
pipeline the processors run, with fan-out switched off. Into an empty store it writes the same
rows with the same ids as the live pipeline did (processors/sequencer.py); over a store that has
them it changes nothing.
"""

from __future__ import annotations

from processors.pipeline import MessagePipeline, Topics
from schemas.settings import Settings
from storage.stores import open_stores
from topics.definitions import dead_letter_topic, inbox_topic, messages_topic, stored_topic
from topics.log import Progress, read_log


async def replay(settings: Settings, progress: Progress | None = None) -> int:
    """Replay the messages topic into the configured store; returns the number of events read."""
    stores = await open_stores(settings)
    try:
        pipeline = MessagePipeline(
            stores.messages,
            stores.channels,
            None,
            Topics(
                inbox_topic(settings).name,
                settings.inbox_partitions,
                dead_letter_topic(settings).name,
                stored_topic(settings).name,
            ),
        )
        return await read_log(settings, messages_topic(settings).name, pipeline.handle, progress)
    finally:
        await stores.close()
