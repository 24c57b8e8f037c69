-- Who may add a user to groups (at creation or later): anyone, their friends only (the default,
-- as in WhatsApp and Telegram), or nobody. Existing accounts take the default.
ALTER TABLE users ADD COLUMN group_adds text NOT NULL DEFAULT 'friends'
    CHECK (group_adds IN ('everyone', 'friends', 'nobody'));
