-- Pinned messages: a pin and an unpin are rows of the channel in its order (kinds `pin` and
-- `unpin`, naming their message), and a message row keeps whether it is pinned: by whom
-- (`pinned_by`, NULL when not), when (`pinned_at`, the pin's `sent_at`), and the id of the pin
-- or unpin that set that last (`pin_id`, so one applied again, or after a later one, changes
-- nothing). A delete unpins. A pin beyond the channel's cap is stored with `refused`
-- `pin_limit` and pins nothing.
ALTER TABLE messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_kind_check
    CHECK (kind IN ('message', 'edit', 'delete', 'reaction', 'pin', 'unpin'));
ALTER TABLE messages DROP CONSTRAINT messages_refused_check;
ALTER TABLE messages ADD CONSTRAINT messages_refused_check
    CHECK (refused IN ('message_limit', 'user_limit', 'pin_limit'));
ALTER TABLE messages
    ADD COLUMN pinned_by text,
    ADD COLUMN pinned_at text,
    ADD COLUMN pin_id    bigint;

-- A channel's pins, newest pin first.
CREATE INDEX messages_pinned ON messages (channel_id, pin_id) WHERE pinned_by IS NOT NULL;
