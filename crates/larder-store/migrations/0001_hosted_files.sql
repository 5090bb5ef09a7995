-- One row per change to any index: the serial that mirrors and page caches
-- follow (X-PyPI-Last-Serial).
CREATE TABLE journal (
    serial     INTEGER PRIMARY KEY AUTOINCREMENT,
    index_name TEXT    NOT NULL,
    project    TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    at_micros  INTEGER NOT NULL
);

-- Projects per index, by normalized name.
CREATE TABLE projects (
    index_name   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    serial       INTEGER NOT NULL,
    PRIMARY KEY (index_name, name)
) WITHOUT ROWID;

-- Distribution files per index. A filename is published once per index and
-- never changes content afterwards.
CREATE TABLE files (
    index_name         TEXT    NOT NULL,
    filename           TEXT    NOT NULL,
    project            TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    sha256             TEXT    NOT NULL,
    size               INTEGER NOT NULL,
    upload_time_micros INTEGER NOT NULL,
    requires_python    TEXT,
    metadata_sha256    TEXT,
    serve_metadata     INTEGER NOT NULL,
    yanked_reason      TEXT,
    yanked             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (index_name, filename)
) WITHOUT ROWID;

CREATE INDEX files_by_project ON files (index_name, project);
CREATE INDEX files_by_sha256 ON files (sha256);
