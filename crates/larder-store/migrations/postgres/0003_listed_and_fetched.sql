-- A file larder has listed keeps its row when the upstream stops listing it
-- (`listed = FALSE`): its /files/ URL was served as immutable and must keep
-- resolving. `fetched = TRUE` once its bytes are stored: from then on a page
-- refresh never swaps the content behind that filename.
ALTER TABLE files ADD COLUMN listed BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE files ADD COLUMN fetched BOOLEAN NOT NULL DEFAULT FALSE;
