-- Visibility (SPEC §7): whether a group's past is visible to members who join it later (on by
-- default, as in Slack; Matrix's "shared"). Off, a member sees the group from their latest join
-- on. A direct channel keeps the default: both its members see everything.
ALTER TABLE channels ADD COLUMN history_visible boolean NOT NULL DEFAULT true;
