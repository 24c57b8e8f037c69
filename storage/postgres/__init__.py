"""The Postgres backend: accounts, channels and cursors always; messages in the embedded default."""
