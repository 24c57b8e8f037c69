"""Opens the stores a process needs, from settings."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from parley.settings import Settings
from storage.postgres.accounts import PostgresAccountStore
from storage.postgres.channels import PostgresChannelStore
from storage.postgres.cursors import PostgresCursorStore
from storage.postgres.friends import PostgresFriendStore
from storage.postgres.messages import PostgresMessageStore
from storage.postgres.pool import open_pool
from storage.postgres.presence import PostgresPresenceStore
from storage.protocols import (
    AccountStore,
    ChannelStore,
    CursorStore,
    FriendStore,
    MessageStore,
    PresenceStore,
)

Pool = AsyncConnectionPool[AsyncConnection[tuple[object, ...]]]


@dataclass
class Stores:
    accounts: AccountStore
    channels: ChannelStore
    cursors: CursorStore
    messages: MessageStore
    friends: FriendStore
    presence: PresenceStore
    pool: Pool

    async def close(self) -> None:
        await self.messages.close()
        await self.pool.close()


async def open_message_store(settings: Settings, pool: Pool) -> MessageStore:
    if settings.message_store == "scylla":
        from storage.scylla import open_scylla_message_store

        return await open_scylla_message_store(
            settings.scylla_host_list(), settings.scylla_keyspace
        )
    return PostgresMessageStore(pool)


async def open_stores(settings: Settings) -> Stores:
    pool = await open_pool(settings)
    return Stores(
        accounts=PostgresAccountStore(pool),
        channels=PostgresChannelStore(pool),
        cursors=PostgresCursorStore(pool),
        messages=await open_message_store(settings, pool),
        friends=PostgresFriendStore(pool),
        presence=PostgresPresenceStore(pool),
        pool=pool,
    )
