-- Friend requests and friendships, one row per direction so either side lists with one read:
-- (a, b, 'requested') + (b, a, 'pending') while a waits for b; both 'friend' once accepted.
CREATE TABLE friend_edges (
    user_id    text NOT NULL REFERENCES users (user_id),
    other_id   text NOT NULL REFERENCES users (user_id),
    state      text NOT NULL CHECK (state IN ('requested', 'pending', 'friend')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, other_id),
    CHECK (user_id <> other_id)
);

-- Each user's presence as the presence processor last decided it. Written on changes only
-- (online <-> offline), never per heartbeat. `presence_partition` lets a processor load the
-- users of the partitions it was assigned after a restart or rebalance.
CREATE TABLE presence (
    user_id            text PRIMARY KEY REFERENCES users (user_id),
    presence_partition int NOT NULL,
    status             text NOT NULL CHECK (status IN ('online', 'offline')),
    last_active_at     timestamptz NOT NULL
);
CREATE INDEX presence_online ON presence (presence_partition) WHERE status = 'online';
