-- Accounts, devices (one per login), channels, memberships and read cursors.
CREATE TABLE users (
    user_id       text PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    display_name  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    device_id  text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (user_id),
    name       text,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE channels (
    channel_id text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('direct', 'group')),
    name       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One direct channel per pair of users: user_low < user_high.
CREATE TABLE direct_pairs (
    user_low   text NOT NULL REFERENCES users (user_id),
    user_high  text NOT NULL REFERENCES users (user_id),
    channel_id text NOT NULL REFERENCES channels (channel_id),
    PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
);

CREATE TABLE channel_members (
    channel_id text NOT NULL REFERENCES channels (channel_id),
    user_id    text NOT NULL REFERENCES users (user_id),
    joined_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);

-- A device's acknowledged position per channel; only ever moves forward.
CREATE TABLE cursors (
    device_id  text NOT NULL REFERENCES devices (device_id),
    channel_id text NOT NULL REFERENCES channels (channel_id),
    message_id bigint NOT NULL,
    PRIMARY KEY (device_id, channel_id)
);
