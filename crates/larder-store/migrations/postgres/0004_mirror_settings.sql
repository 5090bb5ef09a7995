-- Settings a `larder mirror --all` run was made with (the filter's
-- fingerprint): serials recorded under other settings do not count.
CREATE TABLE mirror_settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
