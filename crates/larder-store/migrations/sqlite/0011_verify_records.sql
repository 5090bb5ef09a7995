-- When `larder verify` last hashed a file's blob (and its core metadata
-- blob) and found them sound: `verify --since` skips what was checked
-- recently. And where a rolling `verify --sample N` stopped, so the next
-- one goes on from there.
ALTER TABLE files ADD COLUMN checked_at_micros INTEGER;
CREATE TABLE verify_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    index_name TEXT    NOT NULL,
    filename   TEXT    NOT NULL
);
