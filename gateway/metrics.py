"""Prometheus metrics of a gateway process (served at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("parley_gateway_connections", "Open WebSocket connections")
FRAMES_IN = Counter("parley_gateway_frames_in_total", "Client frames received", ["type"])
ERRORS = Counter("parley_gateway_errors_total", "Error frames sent", ["code"])
DELIVERED = Counter("parley_gateway_messages_delivered_total", "Message frames queued to sockets")
ACCEPTED = Counter("parley_gateway_sends_accepted_total", "Sends acknowledged by the broker")
SLOW_CLOSED = Counter(
    "parley_gateway_slow_consumers_closed_total", "Sockets closed for not reading"
)
SYNC_SECONDS = Histogram("parley_gateway_sync_seconds", "Time from welcome to synced")
PRESENCE_DROPPED = Counter(
    "parley_gateway_presence_subscriptions_dropped_total",
    "Watched users dropped from sockets' subscriptions once the right to watch them ended",
)
MEMBERSHIP_HITS = Counter(
    "parley_gateway_membership_cache_hits_total",
    "Membership checks of sends, changes and typing answered from the gateway's cache",
)
MEMBERSHIP_MISSES = Counter(
    "parley_gateway_membership_cache_misses_total",
    "Membership checks that read the store (not cached, expired, or a refusal)",
)
SEARCHES = Gauge("parley_gateway_searches", "Searches in progress (admitted, not yet answered)")
