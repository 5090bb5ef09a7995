-- The upstream's whole project list as last fetched, so /simple/ still
-- lists it after a restart while the upstream is down: one row, the list
-- compressed as the proxy wrote it, and when it was fetched.
CREATE TABLE upstream_project_list (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    fetched_at_micros INTEGER NOT NULL,
    body              BLOB NOT NULL
);
