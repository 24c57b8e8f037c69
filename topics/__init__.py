"""Parley's topics: the system's spine. Each is described here once: name, key, partitioning,
schema and retention. Ops replay `messages` to rebuild the message store; analytics consumers
tap any of them (`parley tap`).

| topic | key | partitions | events (schemas/events.py) | retention |
|---|---|---|---|---|
| `parley.messages.v1` | channel_id | `messages_partitions` (8) | `message.send` v1, `channel.members` v1 | forever (`retention.ms=-1`): history is kept forever and the store is rebuilt from it (`parley replay`) |
| `parley.inbox.v1` | channel_id; partition = hash(recipient user_id) | `inbox_partitions` (16) | `inbox.message` v1, `device.revoked` v1, `user.suspended` v1, `inbox.signal` v1, `inbox.membership` v1 | 1 day (hourly segments): gateways read it live, offline devices catch up from the store, and pushes older than `push_max_age_s` are never sent |
| `parley.stored.v1` | channel_id | `messages_partitions` (8) | `message.stored` v1 (a stored message with its id, published after the store write, in channel order, at least once); later events of a message's life (edits, deletions, reactions) will join it with types of their own, and its consumers skip types they do not know | forever (`retention.ms=-1`): the search index is rebuilt from it (`parley replay --search`) |
| `parley.messages.dlq.v1` | channel_id | 1 | any event the processor could not accept, with an `x-parley-error` header | 30 days |
| `parley.presence.v1` | user_id | `presence_partitions` (8) | `presence.event` v1 (connect, heartbeat, disconnect, logout of one socket) | 1 hour: soft state, repaired by the next heartbeat |
| `parley.presence-changes.v1` | user_id | `presence_partitions` (8) | `presence.changed` v1 (online <-> offline); `presence.access_changed` v1 (key `access/<user_id>`: who may watch the user changed) | compacted (hourly segments): the latest per key |
| `parley.gateways.v1` | gateway_id | 1 | `gateway.announced` v1 (up every `registry_interval_s` or, in a large fleet, every live / 50 s; or down) | compacted (hourly segments): the latest per gateway |
| `parley.audit.v1` | target (the user acted on; `operator` when none) | 1 | `admin.action` v1 (an operator's action through the admin API, after it took effect) | a year: the operators' record (`parley tap parley.audit.v1`) |

Records are at most 4 MiB (`max.message.bytes` on each data topic). Retention is set when a
topic is created (`parley topics`); change it on a running cluster with `kafka-configs
--alter`, since Parley leaves existing topics as they are.

Ordering: every event of one channel is in one `messages` partition, so the sequencer sees a
channel's sends in one order and gives them increasing ids. A user's inbox records are all in
one `inbox` partition, so a gateway serving the user reads that one partition; the processors'
notifier (push notifications) reads `inbox` too, in the processors' consumer group. A channel's
stored messages are in one `stored` partition, in id order; the search indexer reads it in the
same group. A user's
presence events and changes are in the same-numbered partitions of the two presence topics, so
the processor that owns a user's events decides their changes, and a gateway watching a user
reads one partition of the changes.
"""
