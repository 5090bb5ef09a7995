-- A file larder has listed keeps its row when the upstream stops listing it
-- (`listed = 0`): its /files/ URL was served as immutable and must keep
-- resolving. `fetched = 1` once its bytes are stored: from then on a page
-- refresh never swaps the content behind that filename.
ALTER TABLE files ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE files ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0;
