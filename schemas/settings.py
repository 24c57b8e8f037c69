"""Runtime settings for every Parley role, read from `PARLEY_*` environment variables.

One `Settings` object serves the gateway, the processors and the CLI so that a deployment
configures each concern once (the broker address, the database, the limits). It lives with the
schemas, at the bottom of the import order, because it is a contract too: the environment a
deployment writes, read by every layer above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    # Where the pieces are.
    kafka_bootstrap: str = "127.0.0.1:19092"
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    data_dir: Path = Path(".parley")

    # The message store: Postgres (embedded default) or Scylla (production).
    message_store: Literal["postgres", "scylla"] = "postgres"
    scylla_hosts: str = "127.0.0.1"  # comma-separated
    scylla_port: int = Field(default=9042, ge=1, le=65535)
    scylla_keyspace: str = "parley"
    # The keyspace's replication, when `parley migrate` (or `parley dev`) creates it: 3 in a
    # cluster (`parley dev --cluster`), where the store reads and writes at LOCAL_QUORUM.
    scylla_replication_factor: int = Field(default=1, ge=1)
    # The consistency of the store's reads and writes (lightweight transactions: the SERIAL
    # level of the same scope). A quorum, so that a read after an acknowledged write sees it
    # with a node down; QUORUM counts the replicas of every datacenter.
    scylla_consistency: Literal["LOCAL_QUORUM", "QUORUM"] = "LOCAL_QUORUM"

    # Kafka client tuning. Kafka answers a waiting fetch as soon as data arrives, so this
    # bounds only how often an idle consumer asks again: it costs no latency, and a longer
    # wait means fewer requests (Kafka's own default is 500 ms).
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0, le=5000)
    kafka_max_request_bytes: int = 4 * 1024 * 1024
    # How old the consumers' view of the partition leaders may get before it is asked again.
    # aiokafka asks again when a fetch finds a leader moved, but not when an offset lookup
    # does (a consumer given a partition after a rebalance): that one would keep asking the
    # old leader until the view expires (Kafka's default: 5 minutes, delivery stalled). It
    # also bounds how long a consumer reading from a broker that hangs (paused rather than
    # dead: no error tells it) takes to learn of its partitions' new leaders.
    kafka_metadata_max_age_ms: int = Field(default=2000, ge=1000)
    # How long the sends' and the pipeline's producers let records gather before a request.
    # Records handed over in one turn of the loop go in one request anyway; a little more
    # gathers the sends of many sockets under load, for as much latency.
    kafka_linger_ms: int = Field(default=0, ge=0, le=50)
    # How long the producers' requests wait for a broker before they ask for the partition's
    # leader again and resend (written once: the producers are idempotent, so they never give a
    # record up). A broker paused rather than killed (a long GC, a frozen VM) keeps its
    # connections open, so this, not a refused connection, bounds how long a write waits once
    # the partition's leadership has moved away from it (docs/operations.md 4.6). Keep it above
    # the brokers' session (broker.session.timeout.ms, 9 s by default; 3 s in `parley dev
    # --cluster`, which sets this to 5 s): a write to a partition whose follower died waits for
    # that follower to be fenced out of the in-sync replicas, and a request given up closes its
    # connection, failing every other request on it.
    kafka_request_timeout_ms: int = Field(default=10_000, ge=500)
    # A send or change the broker has not acknowledged within this is answered `internal`
    # (send it again with the same client_msg_id: it is stored once), so a client never waits
    # in silence, even while the log takes no writes (two brokers of three down). The record
    # may still be written later; the resend then finds it.
    send_answer_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # Topic shape (used when topics are created; must match existing topics).
    messages_partitions: int = Field(default=8, ge=1)
    inbox_partitions: int = Field(default=16, ge=1)
    presence_partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # The replicas that must have a record before the broker acknowledges it (producers write
    # with acks=all): 2 with replication 3, so that one broker may fail and nothing
    # acknowledged is lost. Set on each topic when it is created; unset, the broker's default.
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # How long `parley.messages.v1` keeps sends (and their texts): the processors' queue, not
    # the history (the stored topic is). A week by default, for a processor outage to be caught
    # up; a deleted text leaves the topic at most this long plus a day (docs/operations.md).
    messages_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    # The longest a deleted text stays in `parley.stored.v1` (the history's log, compacted):
    # its record is replaced by a blank copy, which compaction makes the only one within this.
    forget_deleted_within_ms: int = Field(default=24 * 3600 * 1000, ge=1000)

    # Gateway.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_ws_url: str | None = None
    gateway_id: str | None = None  # default: hostname:http_port (must be unique)
    registry_interval_s: float = 2.0
    registry_ttl_s: float = 6.0
    hello_timeout_s: float = 5.0
    heartbeat_interval_s: int = 15
    send_rate_per_s: float = 20.0
    send_burst: int = 50
    # Every other frame (ack, heartbeat, presence.subscribe, and frames refused as invalid), per
    # device; a presence.subscribe costs PRESENCE_SUBSCRIBE_COST of them.
    frame_rate_per_s: float = Field(default=50.0, gt=0)
    frame_burst: int = Field(default=200, ge=10)
    outbound_queue_frames: int = 10_000
    # A device's token works this long after its login or last renewal.
    token_ttl_s: float = Field(default=30 * 24 * 3600, gt=0)
    max_devices_per_user: int = Field(default=50, ge=1)
    max_sockets_per_device: int = Field(default=8, ge=1)  # per gateway
    # Attempts allowed per `throttle_window_s`, per gateway process (gateway/ratelimit.py);
    # beyond them 429 with Retry-After. An IPv6 client counts by its /64.
    throttle_window_s: float = Field(default=600.0, gt=0)
    signups_per_address: int = Field(default=20, ge=1)
    # Log-ins from one address, whatever the accounts.
    logins_per_address: int = Field(default=30, ge=1)
    # Log-ins to one account from one address; a successful one gives them back.
    logins_per_account_address: int = Field(default=10, ge=1)
    # Log-ins to one account from every address together, at once; beyond, one every
    # `throttle_window_s / logins_per_account` (12 s), taken by the addresses in turn: it
    # slows an account's attackers and never locks its owner out.
    logins_per_account: int = Field(default=50, ge=1)
    # Password hashes computed at once (each takes a core for tens of milliseconds), and how many
    # may wait for one before sign-ups and log-ins are refused (429) instead of queued.
    max_concurrent_hashes: int = Field(default=2, ge=1)
    max_waiting_hashes: int = Field(default=64, ge=0)
    # Bytes (of queued frames' memory) one socket may have waiting before it is closed (4008),
    # and all sockets of a gateway together.
    outbound_queue_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    gateway_outbound_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024 * 1024)
    cursor_flush_interval_s: float = 0.5
    max_presence_subscriptions: int = 500
    sync_page_size: int = Field(default=500, ge=1, le=5000)
    # Password hashing (argon2id). The default is RFC 9106's low-memory profile; lower it only
    # for test and benchmark stacks, where thousands of accounts are made in minutes.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    presence_linger_ms: int = Field(default=20, ge=0)  # batching of presence events
    gateway_drain_s: float = Field(default=5.0, ge=0)  # SIGTERM: sockets handed off over this
    # The memberships a gateway keeps for its connected users' sends (gateway/memberships.py):
    # at most this many (about 0.5 KiB each), each read again after this long in case an
    # `inbox.membership` event was lost between a database commit and its publish.
    gateway_membership_entries: int = Field(default=100_000, ge=1)
    gateway_membership_ttl_s: float = Field(default=30.0, gt=0)

    # Search (gateway/search_gate.py): per user this many at once and this rate; per gateway
    # this many at once. A refused search gets 429 with Retry-After.
    search_per_user: int = Field(default=1, ge=1)
    search_rate_per_s: float = Field(default=1.0, gt=0)
    search_burst: int = Field(default=5, ge=1)
    search_concurrency: int = Field(default=4, ge=1)
    # Searches read the index through a Postgres pool of their own, this many connections: slow
    # searches wait for one another, never for the connections every other request needs.
    search_pool_size: int = Field(default=2, ge=1)
    # One deadline per search request, for all of it (waiting for a connection, every
    # statement, the snippets): past it the search answers 422 `too_broad` (429 when it never
    # got a connection), its statement cancelled.
    search_deadline_s: float = Field(default=2.0, gt=0)
    # Group adds (gateway/ratelimit.py `UserBuckets`): a token bucket per adder, per gateway.
    # Each user added to a group takes a token, at a group's creation too (a creation of more
    # members than the bucket holds takes the whole bucket). A refused add gets 429 with
    # Retry-After.
    group_add_rate_per_s: float = Field(default=0.1, gt=0)
    group_add_burst: int = Field(default=100, ge=1)
    # Reports of messages (gateway/commands/moderation.py): a token bucket per reporter, per
    # gateway. A refused report gets 429 with Retry-After.
    report_rate_per_s: float = Field(default=0.05, gt=0)
    report_burst: int = Field(default=10, ge=1)
    # The operator API (`/v1/admin/...`): its bearer token, at least 32 characters. Unset (the
    # default; there is no default token), every admin route answers 404 to everyone.
    admin_token: SecretStr | None = Field(default=None, min_length=32)
    # Invite links (gateway/commands/invites.py): a token bucket per user, per gateway, for
    # looking a link up and joining by one (each takes a token, a refusal too), so nobody
    # tries codes at a rate; beyond it 429 with Retry-After.
    invite_rate_per_s: float = Field(default=0.2, gt=0)
    invite_burst: int = Field(default=20, ge=1)
    # Exports of a user's data (GET /v1/users/me/export, gateway/commands/export.py): per user
    # one at a time and this many an hour, per gateway this many at once; beyond, 429 with
    # Retry-After. Messages are read from the store this many at a time: what an export holds
    # in memory at most (a message is at most 100,000 characters, so 100 are at most 40 MB).
    exports_per_hour: int = Field(default=4, ge=1)
    export_concurrency: int = Field(default=2, ge=1)
    export_page_size: int = Field(default=100, ge=1, le=1000)

    # Processors.
    processor_http_host: str = "127.0.0.1"
    # Set, the gateway serves /metrics only here (e.g. a private interface), not on its public
    # HTTP port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # Unset, /metrics on the public HTTP port answers loopback clients only (404 to others);
    # true, it answers anyone who reaches the port.
    metrics_public: bool = False
    processor_http_port: int = 8090
    processor_id: str = "parley-processor"
    processor_batch_max: int = Field(default=500, ge=1)
    # A batch of a hot topic holds at most this many bytes of records (and at least one).
    processor_batch_bytes: int = Field(default=1024 * 1024, ge=1)
    # A send or change event of this many bytes or more (a huge text) is handled in its
    # partition's heavy lane, so the partition's other channels never wait behind it.
    processor_heavy_record_bytes: int = Field(default=64 * 1024, ge=1)
    # How long a batch of the Faust agents waits to fill (the hot topics take whatever
    # arrived, processors/consumer.py): presence events are in no hurry, so their agent waits
    # and wakes less.
    presence_batch_within_s: float = Field(default=0.05, gt=0)
    # Read-marker moves and typing wait this long for company: the batch coalesces a user's
    # moves in a channel into one, and a channel's moves into one `receipts` frame.
    signals_batch_within_s: float = Field(default=0.25, gt=0)
    processor_session_timeout_s: float = 10.0
    processor_commit_interval_s: float = 0.5
    membership_cache_ttl_s: float = 30.0
    heartbeat_timeout_s: float = 30.0
    presence_tick_s: float = 0.5

    # Push notifications, for messages a user with no open socket was not connected to receive.
    push_provider: Literal["log", "webhook"] = "log"
    push_webhook_url: str | None = None  # the operator's push relay (to APNs, FCM, Web Push)
    push_webhook_secret: SecretStr | None = None  # signs every POST (HMAC-SHA256)
    push_webhook_timeout_s: float = Field(default=5.0, gt=0)
    push_attempts: int = Field(default=5, ge=1)
    push_retry_base_s: float = Field(default=0.5, ge=0)
    push_coalesce_s: float = Field(default=300.0, ge=0)  # one push per channel burst
    push_max_age_s: float = Field(default=600.0, gt=0)  # older messages are never pushed
    push_preview_chars: int = Field(default=200, ge=0)
    push_concurrency: int = Field(default=64, ge=1)
    # The notifier decides a batch of inbox records at a time, with two queries: gathering
    # for this long (across all the inbox partitions a processor owns) keeps them off the
    # per-message cost, and a push waits that much longer.
    push_batch_within_s: float = Field(default=0.2, ge=0)
    # The search indexer likewise gathers the stored partitions' records for this long: one
    # insert of a batch instead of one per partition batch; a message is searchable that much
    # later.
    index_batch_within_s: float = Field(default=0.05, ge=0)
    # Their consumer's fetch waits at the broker for 1 MiB or this long: under light load the
    # notifier and the indexer wake about this often (a push or an index entry waits up to
    # that), under heavy load once per MiB, never once per record.
    followers_fetch_wait_s: float = Field(default=1.0, gt=0, le=5)

    # Postgres pool.
    postgres_pool_min: int = 1
    postgres_pool_max: int = 10

    def scylla_host_list(self) -> list[str]:
        return [h.strip() for h in self.scylla_hosts.split(",") if h.strip()]

    def ws_url(self) -> str:
        if self.public_ws_url:
            return self.public_ws_url
        return f"ws://{self.http_host}:{self.http_port}/v1/ws"
