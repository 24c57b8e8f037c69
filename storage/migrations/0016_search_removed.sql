-- Messages removed from the search index (deleted): a row each, without text, kept for good,
-- so that nothing indexes them again (a rebuild that read a message from the log before its
-- delete reached the index: storage/postgres/search.py `add`).
CREATE TABLE search_removed (
    channel_id text   NOT NULL,
    message_id bigint NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
