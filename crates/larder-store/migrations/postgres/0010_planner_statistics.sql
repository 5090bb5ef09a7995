-- SQLite gets fixed planner statistics here (sqlite/0010). PostgreSQL's
-- planner keeps its own, measured by autovacuum as the tables grow, and
-- seeks through the same indexes at any size: nothing to set, the version
-- is kept so both sets of migrations number alike.
COMMENT ON TABLE files IS 'Distribution files per index (see migrations/postgres/0001_initial.sql).';
