-- The message store, shaped like its Scylla table: partitioned by (channel, time bucket),
-- clustered by message_id. `bucket` is message time in BUCKET_MS slices (storage/buckets.py).
CREATE TABLE messages (
    channel_id       text   NOT NULL,
    bucket           int    NOT NULL,
    message_id       bigint NOT NULL,
    sender_id        text   NOT NULL,
    sender_device_id text   NOT NULL,
    client_msg_id    text   NOT NULL,
    text             text   NOT NULL,
    sent_at          text   NOT NULL,
    PRIMARY KEY (channel_id, bucket, message_id)
);

-- A send's idempotency key -> the id it was given (Scylla: a table written with IF NOT EXISTS).
CREATE TABLE message_sends (
    sender_device_id text   NOT NULL,
    client_msg_id    text   NOT NULL,
    channel_id       text   NOT NULL,
    message_id       bigint NOT NULL,
    PRIMARY KEY (sender_device_id, client_msg_id)
);
