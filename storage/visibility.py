"""What a member may see of a channel's past (SPEC §7, Visibility): one rule, applied by
history, sync, search, receipts and unread counts alike.

A group's "history visible to new members" setting (on by default) decides. On, every member
sees the whole history. Off, a member sees the messages from the instant they joined on: their
latest join, since leaving ends a membership and being added again starts a new one. A direct
channel is always visible to both its members.

The rule reads the setting as it is now, not as it was when a message was sent (Matrix keeps
the setting of each moment; Parley keeps one per group): turning it off hides the past again
from members who joined later, and turning it on shows it to them.
"""

from __future__ import annotations

from schemas.ids import id_floor
from storage.protocols.channels import Membership


def visible_from(membership: Membership) -> int:
    """The smallest message id the member may see in the channel (ids follow send time, so a
    message sent before the join has an id below the join's floor)."""
    if membership.history_visible:
        return 1
    return id_floor(membership.joined_at_ms)
