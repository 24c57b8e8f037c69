"""The Scylla backend: the message store for production deployments (storage/scylla/schema.cql)."""

from storage.scylla.messages import ScyllaMessageStore, open_scylla_message_store
from storage.scylla.schema import migrate_cluster, migrate_scylla
from storage.scylla.session import connect_scylla, shutdown_scylla

__all__ = [
    "ScyllaMessageStore",
    "connect_scylla",
    "migrate_cluster",
    "migrate_scylla",
    "open_scylla_message_store",
    "shutdown_scylla",
]
