"""What the gateway's commands and connections work with: one `Services` per gateway process,
made by `gateway/app.py` at start-up and stopped there."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.connections import Registry
from gateway.cursors import CursorWriter
from gateway.follower import PartitionFollower
from gateway.memberships import MembershipCache
from gateway.outbox import Budget
from gateway.presence import PresenceHub
from gateway.publisher import Publisher
from gateway.ratelimit import AccountThrottles, ExportGate, UserBuckets
from gateway.registry import GatewayRegistry
from gateway.search_gate import SearchGate
from gateway.tokens import Passwords
from schemas.settings import Settings
from storage.stores import Stores


@dataclass
class Services:
    settings: Settings
    stores: Stores
    publisher: Publisher
    inbox: PartitionFollower
    presence: PresenceHub
    registry: Registry
    cursors: CursorWriter
    gateways: GatewayRegistry
    passwords: Passwords
    outbound: Budget  # bytes queued to every socket of this gateway
    throttles: AccountThrottles
    memberships: MembershipCache  # the connected users' memberships, for their sends
    searches: SearchGate  # who may search now
    group_adds: UserBuckets  # how many users each user may add to groups now
    reports: UserBuckets  # how many messages each user may report now
    invite_lookups: UserBuckets  # how many invite links each user may look up or use now
    exports: ExportGate  # who may export their data now
