-- The bounded cache. One row per blob the proxy stored for a client (not
-- the ones `larder mirror`, `larder import` or an upload stored): its size
-- and when a client last asked for it (flushed in batches, so coarse).
-- Eviction removes the blob and sets `evicted_micros`; the file rows stay,
-- so pages still list it and it is fetched again on demand (which clears
-- `evicted_micros`). A blob that a mirror stores loses its row: it is
-- mirrored from then on, and never evicted.
CREATE TABLE cached_blobs (
    sha256             TEXT    PRIMARY KEY,
    size               INTEGER NOT NULL,
    last_access_micros INTEGER NOT NULL,
    evicted_micros     INTEGER
);

CREATE INDEX cached_blobs_by_access ON cached_blobs (last_access_micros) WHERE evicted_micros IS NULL;

-- Projects (glob patterns over normalized names) whose cached files are
-- never evicted: `larder pin`.
CREATE TABLE pins (
    pattern        TEXT    PRIMARY KEY,
    created_micros INTEGER NOT NULL
);
