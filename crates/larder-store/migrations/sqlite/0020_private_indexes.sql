-- Named indexes created with `larder index create` or declared in the
-- config file (the built-in `local` and `upstream` have no row). `bases`,
-- `release_age_exempt` and `merge_bases` are JSON arrays of names.
CREATE TABLE indexes (
    name                  TEXT    PRIMARY KEY,
    kind                  TEXT    NOT NULL,
    bases                 TEXT    NOT NULL,
    anonymous_read        INTEGER NOT NULL,
    min_release_age_secs  INTEGER,
    release_age_exempt    TEXT    NOT NULL,
    merge_bases           TEXT    NOT NULL
) WITHOUT ROWID;

-- API tokens, one index each. Only a salted SHA-256 of the secret is kept;
-- the secret itself is shown once, when the token is created.
CREATE TABLE tokens (
    id              TEXT    PRIMARY KEY,
    index_name      TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    salt            TEXT    NOT NULL,
    secret_sha256   TEXT    NOT NULL,
    description     TEXT,
    created_micros  INTEGER NOT NULL,
    expires_micros  INTEGER,
    revoked_micros  INTEGER
) WITHOUT ROWID;

-- Filenames deleted from a hosted index: never published again there.
CREATE TABLE deleted_files (
    index_name      TEXT    NOT NULL,
    filename        TEXT    NOT NULL,
    sha256          TEXT    NOT NULL,
    deleted_micros  INTEGER NOT NULL,
    PRIMARY KEY (index_name, filename)
) WITHOUT ROWID;

-- What an upload brought besides the file row: its other digests, the
-- blob of its PEP 740 attestations, and the token that uploaded it.
CREATE TABLE upload_details (
    index_name           TEXT NOT NULL,
    filename             TEXT NOT NULL,
    md5                  TEXT NOT NULL,
    blake2b_256          TEXT NOT NULL,
    attestations_sha256  TEXT,
    token_id             TEXT,
    PRIMARY KEY (index_name, filename)
) WITHOUT ROWID;

-- When larder first saw an upstream file: the release-age policy's clock
-- for files whose upstream upload time is unknown.
CREATE TABLE first_seen (
    sha256     TEXT    PRIMARY KEY,
    at_micros  INTEGER NOT NULL
) WITHOUT ROWID;
