-- The database's own clock, in microseconds since the Unix epoch, for the
-- statements that must agree across nodes whatever their clocks say (the
-- expiry of leases). Written once per dialect here, so that a statement
-- reads `(SELECT now_micros FROM database_clock)` in both.
-- julianday('now'): the time now, to the millisecond.
CREATE VIEW database_clock AS
SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AS now_micros;
