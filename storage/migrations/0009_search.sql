-- The embedded search index (storage/postgres/search.py): a copy of each stored message with
-- the tokens it is found by (storage/search/tokens.py). Filled by the processors' indexer from
-- parley.stored.v1, and rebuilt from it by `parley replay --search`.
CREATE TABLE search_entries (
    channel_id       text     NOT NULL,
    message_id       bigint   NOT NULL,
    sender_id        text     NOT NULL,
    sender_device_id text     NOT NULL,
    client_msg_id    text     NOT NULL,
    text             text     NOT NULL,
    sent_at          text     NOT NULL,
    tokens           text[]   NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
-- Which entries hold every token of a query.
CREATE INDEX search_entries_tokens ON search_entries USING gin (tokens);
