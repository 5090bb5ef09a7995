//! What the proxy stores about upstream projects: page state for freshness
//! and revalidation, page-level fields, and the listed files.

use std::str::FromStr;

use jiff::Timestamp;
use larder_index::{NormalizedName, ProjectStatus, Sha256, UploadTime};
use sqlx::Row;

pub use larder_index::UpstreamMeta;

use super::{Database, DbError, FileRecord, UPSTREAM_INDEX, file_record, journal, touch_project};

/// A file a bulk job stored: its blob is published, and so is the core
/// metadata extracted from it, when there is some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDownload {
    /// The file's digest.
    pub sha256: Sha256,
    /// Its filename.
    pub filename: String,
    /// Its size.
    pub size: u64,
    /// The digest of its core metadata blob.
    pub metadata: Option<Sha256>,
}

/// When and from where a project page was last fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageState {
    /// When the upstream last answered for it.
    pub fetched_at: Timestamp,
    /// False when every upstream said 404.
    pub found: bool,
    /// The page URL that answered.
    pub source_url: Option<String>,
    /// Its `ETag`.
    pub etag: Option<String>,
    /// The digest of its body.
    pub body_sha256: Option<Sha256>,
}

impl Database {
    /// The stored state of an upstream project page, if it was ever fetched.
    pub async fn page_state(&self, name: &NormalizedName) -> Result<Option<PageState>, DbError> {
        let row = sqlx::query(
            "SELECT fetched_at_micros, found, source_url, etag, body_sha256 FROM upstream_pages WHERE name = ?",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PageState {
                fetched_at: Timestamp::from_microsecond(row.get("fetched_at_micros"))
                    .map_err(|_| DbError::Corrupt("upstream_pages.fetched_at_micros"))?,
                found: row.get("found"),
                source_url: row.get("source_url"),
                etag: row.get("etag"),
                body_sha256: row
                    .get::<Option<&str>, _>("body_sha256")
                    .map(|v| Sha256::from_str(v).map_err(|_| DbError::Corrupt("upstream_pages.body_sha256")))
                    .transpose()?,
            })
        })
        .transpose()
    }

    /// Records that the stored page was confirmed current at `at`
    /// (a 304, or an identical body).
    pub async fn touch_page(&self, name: &NormalizedName, at: Timestamp, etag: Option<&str>) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE upstream_pages SET fetched_at_micros = ?, etag = COALESCE(?, etag) WHERE name = ?")
            .bind(at.as_microsecond())
            .bind(etag)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Records that every upstream answered 404 at `at`: the project leaves
    /// the index; its file rows stay, delisted, so URLs already served keep
    /// resolving to what is stored.
    pub async fn mark_page_missing(&self, name: &NormalizedName, at: Timestamp) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO upstream_pages (name, fetched_at_micros, found) VALUES (?, ?, 0)
             ON CONFLICT (name) DO UPDATE SET fetched_at_micros = excluded.fetched_at_micros, found = 0,
                 source_url = NULL, etag = NULL, body_sha256 = NULL",
        )
        .bind(name.as_str())
        .bind(at.as_microsecond())
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM projects WHERE index_name = ? AND name = ?")
            .bind(UPSTREAM_INDEX)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            sqlx::query("UPDATE files SET listed = 0 WHERE index_name = ? AND project = ?")
                .bind(UPSTREAM_INDEX)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await?;
            journal(&mut tx, UPSTREAM_INDEX, name.as_str(), "gone upstream").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces what is listed for an upstream project with a freshly
    /// fetched page, in one transaction. What larder learned itself about a
    /// file (size, extracted metadata) is kept as long as the upstream
    /// lists the same digest under the same filename; its upload time is
    /// always the page's (none when the page gives none). A file whose
    /// bytes larder already stored never changes content: when the upstream
    /// lists other bytes under its filename, the stored one stays, and its
    /// filename is returned so the caller can say so. Files no longer
    /// listed are delisted, not forgotten, unless the page shares no file
    /// with the one it replaces (see [`keep_stored_listed`]).
    pub async fn replace_page(
        &self,
        name: &NormalizedName,
        display_name: &str,
        state: &PageState,
        meta: &UpstreamMeta,
        files: &[FileRecord],
    ) -> Result<Vec<String>, DbError> {
        let json = |list: &[String]| serde_json::to_string(list).expect("a list of strings serializes");
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO upstream_pages (name, fetched_at_micros, found, source_url, etag, body_sha256, versions,
                                         tracks, alternate_locations, status, status_reason, last_serial)
             VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET
                 fetched_at_micros = excluded.fetched_at_micros, found = 1, source_url = excluded.source_url,
                 etag = excluded.etag, body_sha256 = excluded.body_sha256, versions = excluded.versions,
                 tracks = excluded.tracks, alternate_locations = excluded.alternate_locations,
                 status = excluded.status, status_reason = excluded.status_reason,
                 last_serial = excluded.last_serial",
        )
        .bind(name.as_str())
        .bind(state.fetched_at.as_microsecond())
        .bind(&state.source_url)
        .bind(&state.etag)
        .bind(state.body_sha256.map(|d| d.to_hex()))
        .bind(json(&meta.versions))
        .bind(json(&meta.tracks))
        .bind(json(&meta.alternate_locations))
        .bind(meta.status.as_ref().map(|s| s.status.as_str()))
        .bind(meta.status.as_ref().and_then(|s| s.reason.as_deref()))
        .bind(meta.last_serial.map(|serial| serial as i64))
        .execute(&mut *tx)
        .await?;
        let serial = journal(&mut tx, UPSTREAM_INDEX, name.as_str(), "refresh").await?;
        touch_project(&mut tx, UPSTREAM_INDEX, name.as_str(), display_name, serial).await?;
        let listed_before: std::collections::HashSet<String> =
            sqlx::query_scalar("SELECT filename FROM files WHERE index_name = ? AND project = ? AND listed = 1")
                .bind(UPSTREAM_INDEX)
                .bind(name.as_str())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let replaced_whole = !listed_before.is_empty() && !files.iter().any(|f| listed_before.contains(&f.filename));
        // Every file of the project is delisted, then each one the page
        // lists is listed again by its upsert: no statement here reads
        // more than the project's own rows.
        sqlx::query("UPDATE files SET listed = 0 WHERE index_name = ? AND project = ? AND listed = 1")
            .bind(UPSTREAM_INDEX)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        let mut refused = Vec::new();
        for file in files {
            if !upsert_upstream_file(&mut tx, name, file).await? {
                // Its stored bytes stay behind the filename, still listed.
                sqlx::query("UPDATE files SET listed = 1 WHERE index_name = ? AND filename = ?")
                    .bind(UPSTREAM_INDEX)
                    .bind(&file.filename)
                    .execute(&mut *tx)
                    .await?;
                refused.push(file.filename.clone());
            }
        }
        if replaced_whole {
            keep_stored_listed(&mut tx, name).await?;
        }
        tx.commit().await?;
        Ok(refused)
    }

    /// Records that a file's bytes are stored: from now on its content
    /// never changes, and its size is filled in where the upstream did not
    /// give it. Its upload time stays what the upstream said, or unknown:
    /// when larder fetched a file says nothing of when it was uploaded (the
    /// release-age policy keeps its own first-seen clock). The bounded
    /// cache counts its blob (asked for now; no longer evicted, if it was).
    pub async fn record_download(&self, sha256: &Sha256, filename: &str, size: u64) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE files SET size = COALESCE(size, ?), fetched = 1
             WHERE sha256 = ? AND filename = ? AND (size IS NULL OR fetched = 0)
             RETURNING index_name, project",
        )
        .bind(size as i64)
        .bind(sha256.to_hex())
        .bind(filename)
        .fetch_all(&mut *tx)
        .await?;
        for row in &changed {
            journal(&mut tx, row.get("index_name"), row.get("project"), &format!("stored {filename}")).await?;
        }
        // Stored for a client: the bounded cache may evict it (again).
        sqlx::query(
            "INSERT INTO cached_blobs (sha256, size, last_access_micros) VALUES ($1, $2, $3)
             ON CONFLICT (sha256) DO UPDATE SET size = excluded.size,
                 last_access_micros = excluded.last_access_micros, evicted_micros = NULL",
        )
        .bind(sha256.to_hex())
        .bind(size as i64)
        .bind(Timestamp::now().as_microsecond())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a batch of stored files (bulk jobs: their blobs, and the
    /// core metadata extracted from them, are published) in one
    /// transaction, with one journal entry per project they changed; the
    /// same as [`Database::record_download`] and, for each `metadata`,
    /// [`Database::record_metadata`] (advertised), file by file, except
    /// that these files are mirrored: the bounded cache never evicts them.
    pub async fn record_downloads(&self, stored: &[StoredDownload]) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let mut changed = std::collections::BTreeSet::new();
        for file in stored {
            let metadata = file.metadata.map(|d| d.to_hex());
            let rows = sqlx::query(
                "UPDATE files SET size = COALESCE(size, ?), fetched = 1,
                     metadata_sha256 = COALESCE(?, metadata_sha256),
                     serve_metadata = CASE WHEN ? IS NULL THEN serve_metadata ELSE 1 END
                 WHERE sha256 = ? AND filename = ?
                   AND (size IS NULL OR fetched = 0
                        OR (? IS NOT NULL AND (metadata_sha256 IS NOT ? OR serve_metadata = 0)))
                 RETURNING index_name, project",
            )
            .bind(file.size as i64)
            .bind(&metadata)
            .bind(&metadata)
            .bind(file.sha256.to_hex())
            .bind(&file.filename)
            .bind(&metadata)
            .bind(&metadata)
            .fetch_all(&mut *tx)
            .await?;
            changed
                .extend(rows.iter().map(|row| (row.get::<String, _>("index_name"), row.get::<String, _>("project"))));
            // Mirrored from now on: never evicted.
            sqlx::query("DELETE FROM cached_blobs WHERE sha256 = $1")
                .bind(file.sha256.to_hex())
                .execute(&mut *tx)
                .await?;
        }
        for (index, project) in &changed {
            journal(&mut tx, index, project, "stored files").await?;
        }
        tx.commit().await
    }

    /// Records the digest of a file's core metadata, now stored, and
    /// whether pages advertise it.
    pub async fn record_metadata(
        &self,
        sha256: &Sha256,
        filename: &str,
        metadata: &Sha256,
        advertise: bool,
    ) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE files SET metadata_sha256 = ?, serve_metadata = MAX(serve_metadata, ?)
             WHERE sha256 = ? AND filename = ?
               AND (metadata_sha256 IS NOT ? OR serve_metadata < ?)
             RETURNING index_name, project",
        )
        .bind(metadata.to_hex())
        .bind(advertise)
        .bind(sha256.to_hex())
        .bind(filename)
        .bind(metadata.to_hex())
        .bind(advertise)
        .fetch_all(&mut *tx)
        .await?;
        for row in &changed {
            journal(&mut tx, row.get("index_name"), row.get("project"), &format!("metadata {filename}")).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The page-level fields stored for an upstream project.
    pub(crate) async fn upstream_meta(&self, name: &NormalizedName) -> Result<Option<UpstreamMeta>, DbError> {
        let row = sqlx::query(
            "SELECT versions, tracks, alternate_locations, status, status_reason, last_serial FROM upstream_pages
             WHERE name = ? AND found = 1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let list = |row: &sqlx::sqlite::SqliteRow, column: &'static str| -> Result<Vec<String>, DbError> {
            match row.get::<Option<&str>, _>(column) {
                None => Ok(Vec::new()),
                Some(text) => serde_json::from_str(text).map_err(|_| DbError::Corrupt(column)),
            }
        };
        row.map(|row| {
            Ok(UpstreamMeta {
                versions: list(&row, "versions")?,
                tracks: list(&row, "tracks")?,
                alternate_locations: list(&row, "alternate_locations")?,
                status: row
                    .get::<Option<String>, _>("status")
                    .map(|status| ProjectStatus { status, reason: row.get("status_reason") }),
                last_serial: row.get::<Option<i64>, _>("last_serial").map(|serial| serial as u64),
            })
        })
        .transpose()
    }

    /// The files an upstream project lists now.
    pub async fn upstream_files(&self, name: &NormalizedName) -> Result<Vec<FileRecord>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE index_name = 'upstream' AND project = ? AND listed = 1 ORDER BY filename"
        ))
        .bind(name.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_record).collect()
    }
}

/// Inserts or updates the row of a file an upstream page lists, and lists
/// it. Returns false, changing nothing, when the row's bytes are stored
/// and the page names other bytes under that filename.
/// Keeps the files whose bytes larder stored listed, for a page that
/// shares no file with the page it replaces: an upstream that lost or
/// replaced the project, or answers for another one, must not hide every
/// wheel larder holds. (A page that drops some files but keeps others is
/// an ordinary deletion: those files are delisted.)
async fn keep_stored_listed(tx: &mut sqlx::SqliteConnection, name: &NormalizedName) -> Result<(), DbError> {
    let kept =
        sqlx::query("UPDATE files SET listed = 1 WHERE index_name = ? AND project = ? AND fetched = 1 AND listed = 0")
            .bind(UPSTREAM_INDEX)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if kept > 0 {
        tracing::warn!(
            project = %name,
            kept,
            "the upstream page shares no file with the one it replaces; the files larder stored stay listed"
        );
    }
    Ok(())
}

async fn upsert_upstream_file(
    tx: &mut sqlx::SqliteConnection,
    project: &NormalizedName,
    file: &FileRecord,
) -> Result<bool, DbError> {
    let upserted = sqlx::query(
        "INSERT INTO files (index_name, filename, project, version, sha256, size, upload_time_micros,
                            upload_time_text, requires_python, metadata_sha256, serve_metadata, yanked,
                            yanked_reason, gpg_sig, provenance, url)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (index_name, filename) DO UPDATE SET
             project = excluded.project,
             version = excluded.version,
             size = COALESCE(excluded.size, CASE WHEN files.sha256 = excluded.sha256 THEN files.size END),
             upload_time_text = excluded.upload_time_text,
             upload_time_micros = excluded.upload_time_micros,
             metadata_sha256 = COALESCE(excluded.metadata_sha256,
                 CASE WHEN files.sha256 = excluded.sha256 THEN files.metadata_sha256 END),
             serve_metadata = MAX(excluded.serve_metadata,
                 CASE WHEN files.sha256 = excluded.sha256 THEN files.serve_metadata ELSE 0 END),
             sha256 = excluded.sha256,
             requires_python = excluded.requires_python,
             yanked = excluded.yanked,
             yanked_reason = excluded.yanked_reason,
             gpg_sig = excluded.gpg_sig,
             provenance = excluded.provenance,
             url = excluded.url,
             listed = 1
         WHERE files.fetched = 0 OR files.sha256 = excluded.sha256",
    )
    .bind(UPSTREAM_INDEX)
    .bind(&file.filename)
    .bind(project.as_str())
    .bind(&file.version)
    .bind(file.sha256.to_hex())
    .bind(file.size.map(|s| s as i64))
    .bind(file.upload_time.as_ref().map(|t| t.timestamp().as_microsecond()))
    .bind(file.upload_time.as_ref().map(UploadTime::as_str))
    .bind(&file.requires_python)
    .bind(file.metadata_sha256.map(|d| d.to_hex()))
    .bind(file.serve_metadata)
    .bind(file.yanked.is_some())
    .bind(file.yanked.as_deref().filter(|r| !r.is_empty()))
    .bind(file.gpg_sig)
    .bind(&file.provenance)
    .bind(&file.url)
    .execute(tx)
    .await?;
    Ok(upserted.rows_affected() > 0)
}
