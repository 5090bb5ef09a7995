-- PEP 792 status of hosted projects, set by `larder project status` or the
-- admin API (a project without a row is active). Uploads to an archived or
-- quarantined project are refused; a quarantined one lists no files.
CREATE TABLE project_status (
    index_name  TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C",
    PRIMARY KEY (index_name, name)
);
