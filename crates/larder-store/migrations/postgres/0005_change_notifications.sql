-- Nodes sharing this database learn of each other's changes at once: every
-- statement that adds to the journal notifies the channel larder_changes,
-- with the table's name as payload.
-- PostgreSQL delivers a notification when its transaction commits (never
-- for one rolled back) and folds duplicates within a transaction. A node
-- that was not listening at that moment (reconnecting) misses it: nodes
-- keep polling the journal as the backstop. The SQLite twin of this
-- migration does nothing (processes sharing a data dir only poll).
CREATE FUNCTION larder_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('larder_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER journal_notify_change AFTER INSERT ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION larder_notify_change();
