-- The database's own clock, in microseconds since the Unix epoch, for the
-- statements that must agree across nodes whatever their clocks say (the
-- expiry of leases). Written once per dialect here, so that a statement
-- reads `(SELECT now_micros FROM database_clock)` in both.
-- clock_timestamp(): the time now, not the transaction's start.
CREATE VIEW database_clock AS
SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS now_micros;
