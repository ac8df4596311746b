-- Action leases (see migrations/0018_action_leases.sql): several daemons share the queue; each
-- claims due actions with FOR UPDATE SKIP LOCKED and renews its lease while it drives them, and a
-- dead daemon's action is taken over once its lease has lapsed.
ALTER TABLE actions ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE actions ADD COLUMN lease_until TEXT COLLATE "C";
