-- Moderation: members' reports of messages, and suspended accounts.
-- A report keeps a copy of the reported text (`text`): the evidence an operator judges, even
-- once the message is deleted. One report per reporter and message.
CREATE TABLE reports (
    report_id   bigint      PRIMARY KEY,
    channel_id  text        NOT NULL REFERENCES channels (channel_id),
    message_id  bigint      NOT NULL,
    sender_id   text        NOT NULL REFERENCES users (user_id),
    reporter_id text        NOT NULL REFERENCES users (user_id),
    reason      text        NOT NULL
        CHECK (reason IN ('spam', 'harassment', 'hate', 'violence', 'illegal', 'other')),
    note        text,
    text        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reporter_id, channel_id, message_id)
);
-- A group's reports, newest first (its owners and admins read them).
CREATE INDEX reports_channel ON reports (channel_id, report_id);

-- A suspended account: its tokens are refused, its sockets closed, its log-ins refused.
ALTER TABLE users ADD COLUMN suspended_at timestamptz;
-- The search index by sender: an operator's bulk delete of one user's messages pages on it.
CREATE INDEX search_entries_sender ON search_entries (sender_id, channel_id, message_id);
