-- Mentions: the users a message's `@username`s name, resolved by the pipeline when it stored
-- the message (schemas/mentions.py); NULL when none. Unread mentions are counted over the
-- messages that have any, which this partial index lists per channel in id order.
ALTER TABLE messages ADD COLUMN mentions text[];

CREATE INDEX messages_mentioning ON messages (channel_id, bucket, message_id)
    WHERE mentions IS NOT NULL AND kind = 'message';
