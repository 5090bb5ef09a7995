-- What an upstream said, kept as it said it: a file's upload time as the
-- page wrote it (`upload_time_micros` stays the instant, for ordering and
-- release-age rules), and the project's serial (`_last-serial` or
-- `X-PyPI-Last-Serial`).
ALTER TABLE files ADD COLUMN upload_time_text TEXT COLLATE "C";
ALTER TABLE upstream_pages ADD COLUMN last_serial BIGINT;
