"""Parley's store errors, one hierarchy for every backend, so callers decide without knowing it.

Every error a store raises on purpose is a `StoreError`, of one of three kinds:

- `RetryableStoreError`: the store was unreachable, overloaded or timed out. A consumer retries
  it (without committing, with back-off).
- `PermanentStoreError`: the store refuses this data for good. A consumer parks the event
  (dead-letter, commit).
- `StoreRefusal`: the request breaks a rule of the product (a full group, a block, an unknown
  user, a search too broad). The command that asked turns it into its error for the client.

Anything else a store raises is a bug, and is treated as retryable: retrying loses nothing,
skipping would.
"""

from __future__ import annotations

from collections.abc import Sequence


class StoreError(Exception):
    """A store call failed; the subclass says whether trying it again can help."""


class RetryableStoreError(StoreError):
    """The store was unreachable, overloaded or timed out: the same call may succeed later."""


class PermanentStoreError(StoreError):
    """The store refuses this data for good (out of range, malformed): retrying cannot help."""


class StoreBusy(RetryableStoreError):
    """No connection to the store came free in the time the caller gave: it is busy."""


class SearchBusy(StoreBusy):
    """The index had no room for the search before its deadline: try again shortly."""


class StoreRefusal(StoreError):
    """The request breaks a rule of the product; the caller tells the client which."""


class UsernameTaken(StoreRefusal):
    """Another account has that username."""


class GroupFull(StoreRefusal):
    """The group has as many members as a group may."""


class NotAMember(StoreRefusal):
    """The user is not a member of the channel."""


class Blocked(StoreRefusal):
    """A block between the two users forbids it."""


class LastOwner(StoreRefusal):
    """The change would leave a group without an owner."""


class NotAGroup(StoreRefusal):
    """The channel is not a group (or does not exist)."""


class InviteUnusable(StoreRefusal):
    """No such invite link, or it expired, was used up or its maker no longer manages the group."""


class TooManyInvites(StoreRefusal):
    """The group has as many usable invite links as a group may."""


class UnknownUsers(StoreRefusal):
    """Some of the users named do not exist."""

    def __init__(self, user_ids: Sequence[str]) -> None:
        super().__init__(f"unknown users: {', '.join(user_ids)}")
        self.user_ids = list(user_ids)


class SearchTooCostly(StoreRefusal):
    """The query would cost more than a search may (it ran out of time): narrow it."""
