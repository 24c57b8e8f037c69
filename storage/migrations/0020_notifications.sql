-- Each member's notification settings for a channel: the level (`all`, `mentions`: pushes and
-- badges for mentions only, `none`: no push at all) and a mute until a time (NULL: not muted),
-- under which only mentions notify. They go with the membership: a member who leaves and comes
-- back starts from the defaults.
ALTER TABLE channel_members
    ADD COLUMN notify      text NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'none')),
    ADD COLUMN muted_until timestamptz,
    -- Counts the member's changes of them: devices keep the settings of the highest.
    ADD COLUMN notify_version bigint NOT NULL DEFAULT 0;
