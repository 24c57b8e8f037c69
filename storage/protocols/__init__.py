"""The storage contracts, one module per concern; every backend passes the same contract tests
(tests/test_storage_contract.py). The errors the stores raise are in `storage/errors.py`.

Everything is re-exported here, so `from storage.protocols import ChannelStore` reads the same
whichever module holds it.
"""

from storage.errors import (
    Blocked,
    GroupFull,
    InviteUnusable,
    LastOwner,
    NotAGroup,
    NotAMember,
    SearchBusy,
    SearchTooCostly,
    StoreError,
    StoreRefusal,
    TooManyInvites,
    UnknownUsers,
    UsernameTaken,
)
from storage.protocols.accounts import AccountStore, Device, Profile, User
from storage.protocols.channels import (
    DEFAULT_NOTIFICATIONS,
    Channel,
    ChannelStore,
    Level,
    Membership,
    Notifications,
    Role,
)
from storage.protocols.cursors import CursorStore
from storage.protocols.friends import FriendEdge, FriendState, FriendStore, GroupAdds
from storage.protocols.invites import Invite, InviteStore, InviteTarget, Joined
from storage.protocols.messages import MessageStore, SendKey
from storage.protocols.moderation import Report, ReportReason, ReportStore
from storage.protocols.presence import Presence, PresenceStore
from storage.protocols.push import PushCandidate, PushEndpoint, PushStore
from storage.protocols.reads import MarkerMove, ReadStore
from storage.protocols.search import SearchIndex, SearchPage, SearchScope

__all__ = [
    "DEFAULT_NOTIFICATIONS",
    "AccountStore",
    "Blocked",
    "Channel",
    "ChannelStore",
    "CursorStore",
    "Device",
    "FriendEdge",
    "FriendState",
    "FriendStore",
    "GroupAdds",
    "GroupFull",
    "Invite",
    "InviteStore",
    "InviteTarget",
    "InviteUnusable",
    "Joined",
    "LastOwner",
    "Level",
    "MarkerMove",
    "Membership",
    "MessageStore",
    "NotAGroup",
    "NotAMember",
    "Notifications",
    "Presence",
    "PresenceStore",
    "Profile",
    "PushCandidate",
    "PushEndpoint",
    "PushStore",
    "ReadStore",
    "Report",
    "ReportReason",
    "ReportStore",
    "Role",
    "SearchBusy",
    "SearchIndex",
    "SearchPage",
    "SearchScope",
    "SearchTooCostly",
    "SendKey",
    "StoreError",
    "StoreRefusal",
    "TooManyInvites",
    "UnknownUsers",
    "User",
    "UsernameTaken",
]
