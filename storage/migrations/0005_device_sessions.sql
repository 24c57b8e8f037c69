-- A device's token expires (it is renewed before then, which replaces it), and the live devices
-- of a user are counted at every login (a user has at most `max_devices_per_user`).
ALTER TABLE devices ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days';
CREATE INDEX devices_live_by_user ON devices (user_id) WHERE revoked_at IS NULL;
