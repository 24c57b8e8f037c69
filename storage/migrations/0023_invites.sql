-- Invite links to groups. A link's code is a bearer secret: only its SHA-256 is kept, so a
-- leak of the database gives nobody a way in; a list shows the code's first characters.
CREATE TABLE channel_invites (
    invite_id text PRIMARY KEY,
    code_hash bytea NOT NULL UNIQUE,
    code_prefix text NOT NULL,
    channel_id text NOT NULL REFERENCES channels (channel_id),
    created_by text NOT NULL REFERENCES users (user_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    max_uses integer CHECK (max_uses > 0),
    uses integer NOT NULL DEFAULT 0
);
CREATE INDEX channel_invites_by_channel ON channel_invites (channel_id);
