-- Blocks: a blocked user cannot open a direct channel with, message, add to a group, befriend
-- or see the presence of the blocker. Blocking ends any friendship or request between the two.
CREATE TABLE blocks (
    blocker_id text NOT NULL REFERENCES users (user_id),
    blocked_id text NOT NULL REFERENCES users (user_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);
