"""Prometheus metrics of a gateway process (served at /metrics)."""

from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from schemas.frames import ErrorCode

CONNECTIONS = Gauge("parley_gateway_connections", "Open WebSocket connections")
FRAMES_IN = Counter("parley_gateway_frames_in_total", "Client frames received", ["type"])
ERRORS = Counter("parley_gateway_errors_total", "Error frames sent", ["code"])
for _code in get_args(ErrorCode):
    ERRORS.labels(_code)  # every code's series from the start, at 0 (alerts compare rates)
DELIVERED = Counter("parley_gateway_messages_delivered_total", "Message frames queued to sockets")
ACCEPTED = Counter("parley_gateway_sends_accepted_total", "Sends acknowledged by the broker")
SLOW_CLOSED = Counter(
    "parley_gateway_slow_consumers_closed_total", "Sockets closed for not reading"
)
SYNC_SECONDS = Histogram("parley_gateway_sync_seconds", "Time from welcome to synced")
SEND_SECONDS = Histogram(
    "parley_gateway_send_seconds",
    "From a send, edit, delete or react frame read to its accepted frame queued (the broker's "
    "acknowledgement included)",
    # The producer gives up after 15 s (request timeout).
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
SEARCHES_REFUSED = Counter(
    "parley_gateway_searches_refused_total",
    "Searches refused, by reason: 429 for the user's search in progress (`in_progress`), the "
    "user's rate (`rate`), the gateway's searches at once at the cap or its snippet process "
    "gone (`busy`), no search connection free within the deadline (`pool`); 422 for a search "
    "past its deadline or too costly (`too_broad`)",
    ["reason"],
)
for _reason in ("in_progress", "rate", "busy", "pool", "too_broad"):
    SEARCHES_REFUSED.labels(_reason)  # every series from the start, at 0
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
