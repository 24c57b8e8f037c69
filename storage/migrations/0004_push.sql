-- Push endpoints: one per device, the handle a push provider needs to reach that device (an APNs
-- or FCM token, a Web Push subscription). A revoked device's endpoint is never used again.
CREATE TABLE push_endpoints (
    device_id  text PRIMARY KEY REFERENCES devices (device_id),
    user_id    text NOT NULL REFERENCES users (user_id),
    platform   text NOT NULL,
    token      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_endpoints_user ON push_endpoints (user_id);

-- The last push claimed per user and channel: a push is claimed here before it is sent, so a
-- message gets one push (one push id) at most, and later messages of the same burst are
-- coalesced into it. `done` once the provider took it (or gave up): until then a redelivered
-- inbox record (after a crash) sends the same push again, under the same push id.
CREATE TABLE push_claims (
    user_id    text NOT NULL,
    channel_id text NOT NULL,
    message_id bigint NOT NULL,
    done       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, channel_id)
);

-- Whether the user has a socket open at all, as the presence processor last decided. A user
-- stays `online` for the heartbeat timeout after the last socket drops (no flap on a quick
-- reconnect), but from the drop on messages reach no device, so pushes go by this instead.
ALTER TABLE presence ADD COLUMN connected boolean NOT NULL DEFAULT false;
