-- Changes to messages, as rows of the channel in its order: an edit, a delete or a reaction
-- has its own id and names its message (`target_id`). A message row keeps its latest state:
-- the edited text with `edited_at` and the id of the edit that set it, or `deleted`.
ALTER TABLE messages
    ADD COLUMN kind      text    NOT NULL DEFAULT 'message'
        CHECK (kind IN ('message', 'edit', 'delete', 'reaction')),
    ADD COLUMN target_id bigint,
    ADD COLUMN emoji     text,
    ADD COLUMN removed   boolean NOT NULL DEFAULT false,
    ADD COLUMN edited_at text,
    ADD COLUMN edit_id   bigint,
    ADD COLUMN deleted   boolean NOT NULL DEFAULT false;
CREATE INDEX messages_changes ON messages (channel_id, target_id) WHERE target_id IS NOT NULL;

-- Who reacted with what: one row per (message, emoji, user), set by the latest reaction row.
CREATE TABLE reactions (
    channel_id text    NOT NULL,
    message_id bigint  NOT NULL,
    emoji      text    NOT NULL,
    user_id    text    NOT NULL,
    event_id   bigint  NOT NULL,
    active     boolean NOT NULL,
    PRIMARY KEY (channel_id, message_id, emoji, user_id)
);
