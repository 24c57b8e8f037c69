"""Opens the stores a process needs, from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from schemas.settings import Settings
from storage.postgres.accounts import PostgresAccountStore
from storage.postgres.channels import PostgresChannelStore
from storage.postgres.cursors import PostgresCursorStore
from storage.postgres.friends import PostgresFriendStore
from storage.postgres.invites import PostgresInviteStore
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.moderation import PostgresReportStore
from storage.postgres.pool import Pool, open_pool
from storage.postgres.presence import PostgresPresenceStore
from storage.postgres.push import PostgresPushStore
from storage.postgres.reads import PostgresReadStore
from storage.postgres.search import PostgresSearchIndex
from storage.protocols.accounts import AccountStore
from storage.protocols.channels import ChannelStore
from storage.protocols.cursors import CursorStore
from storage.protocols.friends import FriendStore
from storage.protocols.invites import InviteStore
from storage.protocols.messages import MessageStore
from storage.protocols.moderation import ReportStore
from storage.protocols.presence import PresenceStore
from storage.protocols.push import PushStore
from storage.protocols.reads import ReadStore
from storage.protocols.search import SearchIndex


@dataclass
class Stores:
    accounts: AccountStore
    channels: ChannelStore
    cursors: CursorStore
    messages: MessageStore
    friends: FriendStore
    presence: PresenceStore
    push: PushStore
    search: SearchIndex
    reads: ReadStore
    reports: ReportStore
    invites: InviteStore
    pool: Pool
    search_pool: Pool | None = None  # the searches' own, if they have one

    async def close(self) -> None:
        await self.messages.close()
        if self.search_pool is not None:
            await self.search_pool.close()
        await self.pool.close()


async def open_message_store(settings: Settings, pool: Pool) -> MessageStore:
    if settings.message_store == "scylla":
        from storage.scylla import open_scylla_message_store

        return await open_scylla_message_store(
            settings.scylla_host_list(),
            settings.scylla_keyspace,
            port=settings.scylla_port,
            consistency=settings.scylla_consistency,
        )
    return PostgresMessageStore(pool)


async def open_stores(settings: Settings, *, search_pool_size: int | None = None) -> Stores:
    """The stores on one pool; with `search_pool_size`, searches read the index through a pool
    of that many connections of their own (a gateway: slow searches then never hold the
    connections every other request needs)."""
    pool = await open_pool(settings)
    search_pool = None if search_pool_size is None else await open_pool(settings, search_pool_size)
    return Stores(
        accounts=PostgresAccountStore(pool),
        channels=PostgresChannelStore(pool),
        cursors=PostgresCursorStore(pool),
        messages=await open_message_store(settings, pool),
        friends=PostgresFriendStore(pool),
        presence=PostgresPresenceStore(pool),
        push=PostgresPushStore(pool),
        search=PostgresSearchIndex(pool if search_pool is None else search_pool),
        reads=PostgresReadStore(pool),
        reports=PostgresReportStore(pool),
        invites=PostgresInviteStore(pool),
        pool=pool,
        search_pool=search_pool,
    )


class SharedStores:
    """One set of stores for the several agents of a process: opened by the first to ask,
    closed when the last lets go."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self._stores: Stores | None = None
        self._holders = 0

    async def acquire(self) -> Stores:
        async with self._lock:
            if self._stores is None:
                self._stores = await open_stores(self._settings)
            self._holders += 1
            return self._stores

    async def release(self) -> None:
        async with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._stores is not None:
                await self._stores.close()
                self._stores = None
