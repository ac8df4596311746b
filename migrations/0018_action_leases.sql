-- Action leases: which daemon drives an unfinished action, and until when its claim holds unless
-- renewed. A SQLite store has one daemon (its lock file), whose claims are always its own; the
-- columns exist so the store's SQL is the same as on PostgreSQL, where several daemons share the
-- queue and a dead daemon's action is taken over once its lease has lapsed.
ALTER TABLE actions ADD COLUMN lease_owner TEXT;
ALTER TABLE actions ADD COLUMN lease_until TEXT;
