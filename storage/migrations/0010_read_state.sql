-- Read state: each user's read marker per channel (the furthest message read on any of their
-- devices; it only moves forward), and whether the user shares it with the channel's other
-- members (read receipts, on by default).
CREATE TABLE read_markers (
    user_id    text   NOT NULL REFERENCES users (user_id),
    channel_id text   NOT NULL REFERENCES channels (channel_id),
    message_id bigint NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
CREATE INDEX read_markers_channel ON read_markers (channel_id);

ALTER TABLE users ADD COLUMN read_receipts boolean NOT NULL DEFAULT true;
