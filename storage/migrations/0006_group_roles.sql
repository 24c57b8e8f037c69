-- Group roles: the creator is `owner`; owners and admins manage members. Existing groups get
-- their longest-standing member as owner, so every group has one.
ALTER TABLE channel_members
    ADD COLUMN role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member'));
UPDATE channel_members m SET role = 'owner'
FROM (
    SELECT DISTINCT ON (cm.channel_id) cm.channel_id, cm.user_id
    FROM channel_members cm JOIN channels c ON c.channel_id = cm.channel_id
    WHERE c.kind = 'group'
    ORDER BY cm.channel_id, cm.joined_at, cm.user_id
) first
WHERE m.channel_id = first.channel_id AND m.user_id = first.user_id;
