-- Fixed planner statistics, so query plans do not depend on how big the
-- store happens to be when a statement is prepared. Without them SQLite
-- walked every file of the index through the primary key for a project
-- page (to skip a sort of three rows) instead of seeking the project.
-- The figures describe a large store: per index, a filename names one
-- file, a project has a few, a digest one. A later ANALYZE replaces them
-- with measured ones, which lead to the same plans.
ANALYZE mirror_settings;
DELETE FROM sqlite_stat1 WHERE tbl IN ('files', 'projects', 'upstream_pages', 'mirror_serials');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('files', 'files', '1000000 500000 1'),
    ('files', 'files_by_project', '1000000 500000 3'),
    ('files', 'files_by_sha256', '1000000 1'),
    ('projects', 'projects', '300000 150000 1'),
    ('upstream_pages', 'upstream_pages', '300000 1'),
    ('mirror_serials', 'mirror_serials', '300000 1');
