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

-- Distribution files per index. A hosted file is published once and never
-- changes content. A proxied file has the upstream URL it is fetched from;
-- its size and upload time may be unknown until it is stored.
CREATE TABLE files (
    index_name         TEXT    NOT NULL,
    filename           TEXT    NOT NULL,
    project            TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    sha256             TEXT    NOT NULL,
    size               INTEGER,
    upload_time_micros INTEGER,
    requires_python    TEXT,
    metadata_sha256    TEXT,
    serve_metadata     INTEGER NOT NULL,
    yanked             INTEGER NOT NULL DEFAULT 0,
    yanked_reason      TEXT,
    gpg_sig            INTEGER,
    provenance         TEXT,
    url                TEXT,
    PRIMARY KEY (index_name, filename)
) WITHOUT ROWID;

CREATE INDEX files_by_project ON files (index_name, project);
CREATE INDEX files_by_sha256 ON files (sha256);

-- What the proxy knows about each upstream project page: when it was
-- fetched, how to revalidate it, and the page-level fields (PEP 700, 708,
-- 792). `found = 0` remembers that every upstream answered 404.
CREATE TABLE upstream_pages (
    name                TEXT    PRIMARY KEY,
    fetched_at_micros   INTEGER NOT NULL,
    found               INTEGER NOT NULL,
    source_url          TEXT,
    etag                TEXT,
    body_sha256         TEXT,
    versions            TEXT,
    tracks              TEXT,
    alternate_locations TEXT,
    status              TEXT,
    status_reason       TEXT
) WITHOUT ROWID;
