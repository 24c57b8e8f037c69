"""The Postgres backend: accounts, channels and cursors always; messages in the embedded default.

A helper that runs inside a transaction it is given ends in `_txn` and takes the connection
first (`lock_group_txn(conn, channel_id)`); the store methods open their own.
"""
