"""Prometheus metrics of a processor process (served at /metrics by the worker's web server)."""

from prometheus_client import Counter, Gauge, Histogram

STORED = Counter("parley_processor_messages_stored_total", "New messages sequenced and stored")
REPEATED = Counter(
    "parley_processor_sends_repeated_total", "Sends seen again (replay or crash) and kept their id"
)
DEAD = Counter(
    "parley_processor_events_dead_lettered_total", "Events parked on the dead-letter topic"
)
DEAD_ACCEPTED = Counter(
    "parley_processor_accepted_events_dead_lettered_total",
    "Valid (accepted) events the store refused for good and the processor parked: an alarm",
)
BATCH_SECONDS = Histogram("parley_processor_batch_seconds", "Time to store and fan out one batch")
SIGNALS = Counter("parley_processor_signals_total", "Read-marker moves and typing events relayed")
PRESENCE_EVENTS = Counter(
    "parley_processor_presence_events_total", "Device events (connect, heartbeat, close, logout)"
)
PRESENCE_CHANGES = Counter(
    "parley_processor_presence_changes_total", "Users gone online or offline"
)
PUSHES_SENT = Counter("parley_processor_pushes_sent_total", "Push notifications delivered")
PUSHES_FAILED = Counter(
    "parley_processor_pushes_failed_total", "Push notifications the provider gave up on"
)
INDEXED = Counter(
    "parley_processor_messages_indexed_total",
    "Stored messages written to the search index (repeats after a crash included)",
)
INDEX_SKIPPED = Counter(
    "parley_processor_index_events_skipped_total",
    "Events of parley.stored.v1 the indexer does not index: other types, or unreadable",
)
BATCH_RETRIES = Counter(
    "parley_processor_batch_retries_total",
    "Batches a handler raised on and that were tried again, by topic",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "parley_processor_consumer_lag",
    "Records of the topic's partitions this worker owns not yet handled (end offset at the last "
    "fetch minus the offset it would commit), by topic; sum over workers",
    ["topic"],
)
