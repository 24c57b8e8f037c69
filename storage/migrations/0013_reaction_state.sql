-- Reactions as state, and history that reads messages only.
--
-- A message row holds its reactions (emoji -> sorted user ids, NULL when none) and the id of
-- the reaction that set them last (`reactions_id`, so a reaction applied again or after a later
-- one changes nothing). The per-(message, emoji, user) table, whose rows stayed behind when a
-- reaction was taken back, is folded into it and dropped. A reaction row beyond the caps is
-- stored as taken back, with the reason in `refused`.
ALTER TABLE messages
    ADD COLUMN reactions    jsonb,
    ADD COLUMN reactions_id bigint,
    ADD COLUMN refused      text CHECK (refused IN ('message_limit', 'user_limit'));

WITH per_emoji AS (
    SELECT channel_id, message_id, emoji, max(event_id) AS last_id,
           jsonb_agg(user_id ORDER BY user_id) FILTER (WHERE active) AS who
    FROM reactions GROUP BY channel_id, message_id, emoji
), per_message AS (
    SELECT channel_id, message_id, max(last_id) AS last_id,
           jsonb_object_agg(emoji, who) FILTER (WHERE who IS NOT NULL) AS reactions
    FROM per_emoji GROUP BY channel_id, message_id
)
UPDATE messages m SET reactions = p.reactions, reactions_id = p.last_id
FROM per_message p
WHERE m.channel_id = p.channel_id AND m.message_id = p.message_id
  AND m.kind = 'message' AND NOT m.deleted;

DROP TABLE reactions;

-- History pages (messages only) read this index: however many changes a channel has (a
-- reaction taken back and added again a million times), a page reads its own rows only.
CREATE INDEX messages_only ON messages (channel_id, bucket, message_id) WHERE kind = 'message';
