-- Named indexes created with `larder index create` or declared in the
-- config file (the built-in `local` and `upstream` have no row). `bases`,
-- `release_age_exempt` and `merge_bases` are JSON arrays of names.
CREATE TABLE indexes (
    name                  TEXT COLLATE "C" PRIMARY KEY,
    kind                  TEXT COLLATE "C" NOT NULL,
    bases                 TEXT COLLATE "C" NOT NULL,
    anonymous_read        BOOLEAN NOT NULL,
    min_release_age_secs  BIGINT,
    release_age_exempt    TEXT COLLATE "C" NOT NULL,
    merge_bases           TEXT COLLATE "C" NOT NULL
);

-- API tokens, one index each. Only a salted SHA-256 of the secret is kept;
-- the secret itself is shown once, when the token is created.
CREATE TABLE tokens (
    id              TEXT COLLATE "C" PRIMARY KEY,
    index_name      TEXT COLLATE "C" NOT NULL,
    scope           TEXT COLLATE "C" NOT NULL,
    salt            TEXT COLLATE "C" NOT NULL,
    secret_sha256   TEXT COLLATE "C" NOT NULL,
    description     TEXT COLLATE "C",
    created_micros  BIGINT NOT NULL,
    expires_micros  BIGINT,
    revoked_micros  BIGINT
);

-- Filenames deleted from a hosted index: never published again there.
CREATE TABLE deleted_files (
    index_name      TEXT COLLATE "C" NOT NULL,
    filename        TEXT COLLATE "C" NOT NULL,
    sha256          TEXT COLLATE "C" NOT NULL,
    deleted_micros  BIGINT NOT NULL,
    PRIMARY KEY (index_name, filename)
);

-- What an upload brought besides the file row: its other digests, the
-- blob of its PEP 740 attestations, and the token that uploaded it.
CREATE TABLE upload_details (
    index_name           TEXT COLLATE "C" NOT NULL,
    filename             TEXT COLLATE "C" NOT NULL,
    md5                  TEXT COLLATE "C" NOT NULL,
    blake2b_256          TEXT COLLATE "C" NOT NULL,
    attestations_sha256  TEXT COLLATE "C",
    token_id             TEXT COLLATE "C",
    PRIMARY KEY (index_name, filename)
);

-- When larder first saw an upstream file: the release-age policy's clock
-- for files whose upstream upload time is unknown.
CREATE TABLE first_seen (
    sha256     TEXT COLLATE "C" PRIMARY KEY,
    at_micros  BIGINT NOT NULL
);
