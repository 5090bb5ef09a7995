-- The PostgreSQL twin of this migration makes every journal entry notify
-- the nodes sharing the database. SQLite
-- has no notifications: processes sharing a data dir poll the journal, so
-- there is nothing to do here (the migration exists so both backends have
-- the same versions).
SELECT 1;
