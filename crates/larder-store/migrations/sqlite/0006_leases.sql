-- Who fetches what from upstream right now, so that nodes sharing the
-- database fetch each file once. A node holds the lease on a fetch (named
-- by its kind and digest) until it has stored the result or failed,
-- renewing it while the fetch runs; one not renewed by expires_micros
-- (its node died or was cut off) may be taken over by another node.
CREATE TABLE leases (
    name           TEXT    PRIMARY KEY,
    holder         TEXT    NOT NULL,
    expires_micros INTEGER NOT NULL
);
