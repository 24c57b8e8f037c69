-- Replies: a message may answer an earlier message of its channel (`reply_to`), and a message
-- keeps how many messages answer it (`reply_count`, deleted replies included) and the newest of
-- them (`last_reply_id`: a client that holds the message counts only replies above it),
-- recounted from the stored replies whenever one is stored, so a repeat or a replay gives the
-- same count.
ALTER TABLE messages
    ADD COLUMN reply_to      bigint,
    ADD COLUMN reply_count   integer NOT NULL DEFAULT 0,
    ADD COLUMN last_reply_id bigint;

-- A thread (the replies to one message) is read in id order, and counted, from this index.
CREATE INDEX messages_replies ON messages (channel_id, reply_to, message_id)
    WHERE reply_to IS NOT NULL;
