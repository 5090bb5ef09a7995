-- Per project, the upstream serial a `larder mirror --all` run last brought
-- in completely: the next run skips projects whose serial is unchanged, and
-- a run killed half-way redoes only the projects it had not finished.
CREATE TABLE mirror_serials (
    name   TEXT COLLATE "C" PRIMARY KEY,
    serial BIGINT NOT NULL
);
