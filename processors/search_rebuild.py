"""Rebuilds the search index from `parley.stored.v1` (`parley replay --search`).

Empties the index, then reads every partition from the beginning up to the end offsets seen
after emptying it, through the indexer the processors run. The live indexer may run meanwhile:
a record it indexed before the emptying is below those end offsets, so read again here, and a
record after them was produced after the emptying, so the live indexer writes it. Searches
during the rebuild see part of the history.
"""

from __future__ import annotations

from processors.indexer import SearchIndexer
from schemas.settings import Settings
from storage.stores import open_stores
from topics.definitions import stored_topic
from topics.log import Progress, read_log


async def rebuild_search(settings: Settings, progress: Progress | None = None) -> int:
    """Empty the search index and fill it from the stored topic; returns the events read."""
    stores = await open_stores(settings)
    try:
        indexer = SearchIndexer(stores.search)
        # Emptied before the end offsets are read: see the module's docstring.
        return await read_log(
            settings,
            stored_topic(settings).name,
            indexer.handle,
            progress,
            before_ends=stores.search.clear,
        )
    finally:
        await stores.close()
