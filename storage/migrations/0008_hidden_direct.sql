-- A member may hide a direct channel: it leaves their channel list until a message newer than
-- `hidden_upto` (the channel's newest message id when it was hidden) arrives.
ALTER TABLE channel_members ADD COLUMN hidden_upto bigint;
