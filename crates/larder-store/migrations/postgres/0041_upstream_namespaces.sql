-- PEP 752 namespace fields of an upstream's JSON page, passed through as
-- given: a JSON object from each key the page had (`namespace`,
-- `namespaces`) to its value's raw JSON text.
ALTER TABLE upstream_pages ADD COLUMN namespaces TEXT COLLATE "C";
