"""Message search: the tokens of every script, snippets, and the index protocol
(`storage.protocols.SearchIndex`), with its Postgres implementation in `storage/postgres/search.py`."""
