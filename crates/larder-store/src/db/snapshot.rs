//! Whole-index snapshots, for static exports and bundles: reading every
//! project of an index with its files (in name order, a batch at a time, so
//! memory stays bounded), and writing back a snapshot taken from another
//! store in one transaction.

use std::collections::HashMap;

use jiff::Timestamp;
use larder_index::{NormalizedName, UploadTime};

pub use larder_index::{SnapshotPage, SnapshotProject};

use super::backend::{DbRow, on_pool, on_tx};
use super::proxied::{PageState, UpstreamMeta, page_meta, upsert_page};
use super::write::WriteTx;
use super::{Database, DbError, FileRecord, UPSTREAM_INDEX, file_record, journal, touch_project};

/// What writing a snapshot changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotChanges {
    /// Projects that got a new journal serial.
    pub projects: usize,
    /// Files that were not listed before.
    pub files_added: usize,
    /// Files listed before whose row changed (yank state, size, ...).
    pub files_updated: usize,
}

impl Database {
    /// At most `limit` projects of `index` whose names sort after `after`,
    /// in name order, each with its files (and, for the upstream index, its
    /// page-level fields when the page was found).
    pub async fn snapshot_projects(
        &self,
        index: &str,
        after: Option<&NormalizedName>,
        limit: u32,
    ) -> Result<Vec<SnapshotProject>, DbError> {
        let rows: Vec<(String, String)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as(
                "SELECT name, display_name FROM projects WHERE index_name = $1 AND name > $2 ORDER BY name LIMIT $3",
            )
            .bind(index)
            .bind(after.map_or("", NormalizedName::as_str))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let (Some((first, _)), Some((last, _))) = (rows.first(), rows.last()) else {
            return Ok(Vec::new());
        };
        let mut files = self.snapshot_files(index, first, last).await?;
        let mut pages = if index == UPSTREAM_INDEX { self.snapshot_pages(first, last).await? } else { HashMap::new() };
        rows.into_iter()
            .map(|(name, display_name)| {
                Ok(SnapshotProject {
                    index: index.to_owned(),
                    files: files.remove(&name).unwrap_or_default(),
                    upstream: pages.remove(&name),
                    name: NormalizedName::from_normalized(&name).ok_or(DbError::Corrupt("projects.name"))?,
                    display_name,
                })
            })
            .collect()
    }

    /// The files of the projects of `index` named `first..=last`, by project.
    async fn snapshot_files(
        &self,
        index: &str,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, Vec<FileRecord>>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT project, ",
                file_columns!(),
                " FROM files WHERE index_name = $1 AND project >= $2 AND project <= $3 AND listed = TRUE
                 ORDER BY project, filename"
            ))
            .bind(index)
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?;
            let mut files: HashMap<String, Vec<FileRecord>> = HashMap::new();
            for row in &rows {
                files.entry(row.col("project")).or_default().push(file_record(row)?);
            }
            Ok(files)
        })
    }

    /// The found upstream pages named `first..=last`.
    async fn snapshot_pages(&self, first: &str, last: &str) -> Result<HashMap<String, SnapshotPage>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(
                "SELECT name, fetched_at_micros, versions, tracks, alternate_locations, status, status_reason,
                        last_serial, namespaces
                 FROM upstream_pages WHERE found = TRUE AND name >= $1 AND name <= $2",
            )
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let page = SnapshotPage {
                        fetched_at: Timestamp::from_microsecond(row.col("fetched_at_micros"))
                            .map_err(|_| DbError::Corrupt("upstream_pages.fetched_at_micros"))?,
                        meta: page_meta(row)?,
                    };
                    Ok((row.col("name"), page))
                })
                .collect()
        })
    }

    /// Writes a snapshot taken from another store, in one transaction:
    /// either all of it becomes visible or, on any error, none of it.
    ///
    /// A file not listed yet is added. A file already listed keeps what
    /// this store knows that the snapshot does not (size, upload time,
    /// metadata digest) and takes the rest (yank state, ...) from the
    /// snapshot; a hosted (non-upstream) file listed with other content is
    /// a [`DbError::FileConflict`]. An upstream page's fields are taken only
    /// when this store has no page for the project or an older one, and
    /// its validators are left empty, so the next online refresh fetches
    /// the whole page (an upstream project without page fields gets a page
    /// fetched at the epoch, so that it is served offline and refreshed
    /// online). Only projects that changed get a journal entry, so
    /// writing the same snapshot twice changes nothing the second time.
    pub async fn import_snapshot(&self, projects: &[SnapshotProject]) -> Result<SnapshotChanges, DbError> {
        let mut tx = self.write().await?;
        let mut changes = SnapshotChanges::default();
        for project in projects {
            let name = project.name.as_str();
            let mut changed = on_tx!(tx, |conn| {
                sqlx::query("SELECT 1 FROM projects WHERE index_name = $1 AND name = $2")
                    .bind(&project.index)
                    .bind(name)
                    .fetch_optional(conn)
                    .await?
                    .is_none()
            });
            if project.index == UPSTREAM_INDEX {
                // Without a page of its own, an upstream project gets one
                // fetched at the epoch: served offline, refreshed online.
                let unknown = SnapshotPage { fetched_at: Timestamp::UNIX_EPOCH, meta: UpstreamMeta::default() };
                changed |= import_page(&mut tx, name, project.upstream.as_ref().unwrap_or(&unknown)).await?;
            }
            for file in &project.files {
                match import_file(&mut tx, &project.index, name, file).await? {
                    FileChange::Added => changes.files_added += 1,
                    FileChange::Updated => changes.files_updated += 1,
                    FileChange::Unchanged => continue,
                }
                changed = true;
            }
            if changed {
                let serial = journal(&mut tx, &project.index, name, "import").await?;
                touch_project(&mut tx, &project.index, name, &project.display_name, serial).await?;
                changes.projects += 1;
            }
        }
        tx.commit().await?;
        Ok(changes)
    }
}

/// What importing one file row did.
enum FileChange {
    Added,
    Updated,
    Unchanged,
}

/// Adds or updates one file row (see [`Database::import_snapshot`]).
async fn import_file(tx: &mut WriteTx, index: &str, project: &str, file: &FileRecord) -> Result<FileChange, DbError> {
    let existing = on_tx!(tx, |conn| {
        let row = sqlx::query(concat!(
            "SELECT project, ",
            file_columns!(),
            " FROM files WHERE index_name = $1 AND filename = $2"
        ))
        .bind(index)
        .bind(&file.filename)
        .fetch_optional(conn)
        .await?;
        row.map(|row| Ok::<_, DbError>((file_record(&row)?, row.col::<String>("project")))).transpose()?
    });
    let (merged, change) = match existing {
        None => (file.clone(), FileChange::Added),
        Some((old, old_project)) => {
            let merged = if old.sha256 == file.sha256 {
                FileRecord {
                    size: file.size.or(old.size),
                    upload_time: file.upload_time.clone().or_else(|| old.upload_time.clone()),
                    metadata_sha256: file.metadata_sha256.or(old.metadata_sha256),
                    serve_metadata: file.serve_metadata || old.serve_metadata,
                    ..file.clone()
                }
            } else if index == UPSTREAM_INDEX {
                file.clone()
            } else {
                return Err(DbError::FileConflict {
                    index: index.to_owned(),
                    filename: file.filename.clone(),
                    existing: old.sha256,
                });
            };
            if merged == old && old_project == project {
                return Ok(FileChange::Unchanged);
            }
            (merged, FileChange::Updated)
        }
    };
    on_tx!(tx, |conn| {
        bind_file_row!(
            sqlx::query(concat!(
                insert_file_row!(),
                "
             ON CONFLICT (index_name, filename) DO UPDATE SET
                 project = excluded.project, version = excluded.version, sha256 = excluded.sha256,
                 size = excluded.size, upload_time_micros = excluded.upload_time_micros,
                 upload_time_text = excluded.upload_time_text,
                 requires_python = excluded.requires_python, metadata_sha256 = excluded.metadata_sha256,
                 serve_metadata = excluded.serve_metadata, yanked = excluded.yanked,
                 yanked_reason = excluded.yanked_reason, gpg_sig = excluded.gpg_sig,
                 provenance = excluded.provenance, url = excluded.url"
            )),
            index,
            project,
            &merged
        )
        .execute(conn)
        .await?;
    });
    Ok(change)
}

/// Takes an upstream page's fields unless this store has a page for the
/// project fetched at the same time or later. Returns whether it did.
async fn import_page(tx: &mut WriteTx, name: &str, page: &SnapshotPage) -> Result<bool, DbError> {
    let newer_here: Option<bool> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT found AND fetched_at_micros >= $1 FROM upstream_pages WHERE name = $2")
            .bind(page.fetched_at.as_microsecond())
            .bind(name)
            .fetch_optional(conn)
            .await?
    });
    if newer_here == Some(true) {
        return Ok(false);
    }
    // No validators: the next online refresh fetches the whole page.
    let state = PageState { fetched_at: page.fetched_at, found: true, source_url: None, etag: None, body_sha256: None };
    upsert_page(tx, name, &state, &page.meta).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;
    use crate::db::proxied::tests::listed;

    each_backend! {
    /// A snapshot read from a store of one backend is written into a store
    /// of each backend and read back the same; writing it again changes
    /// nothing.
    async fn a_snapshot_round_trips(backend: Backend) {
        let source = TestDb::new(Backend::Sqlite);
        let source_db = source.open().await;
        let name = NormalizedName::new("demo").unwrap();
        let meta = UpstreamMeta {
            versions: vec!["1.0".into()],
            last_serial: Some(7),
            namespaces: [("namespace".into(), "null".into())].into(),
            ..UpstreamMeta::default()
        };
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let state = PageState { fetched_at: at, found: true, source_url: None, etag: None, body_sha256: None };
        let mut yanked = listed("demo-1.0.tar.gz", b"1");
        yanked.yanked = Some("broken".into());
        let files = [yanked, listed("demo-1.0-py3-none-any.whl", b"2")];
        source_db.replace_page(&name, "Demo", &state, &meta, &files).await.unwrap();
        let snapshot = source_db.snapshot_projects(UPSTREAM_INDEX, None, 10).await.unwrap();
        assert_eq!(snapshot.len(), 1);

        let target = TestDb::new(backend);
        let db = target.open().await;
        let changes = db.import_snapshot(&snapshot).await.unwrap();
        assert_eq!(changes, SnapshotChanges { projects: 1, files_added: 2, files_updated: 0 });
        assert_eq!(db.import_snapshot(&snapshot).await.unwrap(), SnapshotChanges::default());
        let back = db.snapshot_projects(UPSTREAM_INDEX, None, 10).await.unwrap();
        assert_eq!(back, snapshot);
        assert!(db.snapshot_projects(UPSTREAM_INDEX, Some(&name), 10).await.unwrap().is_empty());
    }
    }
}
