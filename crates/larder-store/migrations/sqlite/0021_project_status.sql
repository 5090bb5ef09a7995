-- PEP 792 status of hosted projects, set by `larder project status` or the
-- admin API (a project without a row is active). Uploads to an archived or
-- quarantined project are refused; a quarantined one lists no files.
CREATE TABLE project_status (
    index_name  TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (index_name, name)
);
