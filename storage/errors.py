"""Parley's store errors: every backend raises these, so callers decide without knowing it.

A consumer retries a `RetryableStoreError` (without committing, with back-off) and parks the
event of a `PermanentStoreError` (dead-letter, commit). Anything else a store raises is a bug,
and is treated as retryable: retrying loses nothing, skipping would.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store call failed; the subclass says whether trying it again can help."""


class RetryableStoreError(StoreError):
    """The store was unreachable, overloaded or timed out: the same call may succeed later."""


class PermanentStoreError(StoreError):
    """The store refuses this data for good (out of range, malformed): retrying cannot help."""


class StoreBusy(RetryableStoreError):
    """No connection to the store came free in the time the caller gave: it is busy."""
