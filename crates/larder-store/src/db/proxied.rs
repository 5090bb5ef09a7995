//! What the proxy stores about upstream projects: page state for freshness
//! and revalidation, page-level fields, and the listed files.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;

use jiff::Timestamp;
use larder_index::{NormalizedName, ProjectStatus, Sha256, UploadTime};

pub use larder_index::UpstreamMeta;

use super::backend::{DbRow, on_pool, on_tx};
use super::write::WriteTx;
use super::{Database, DbError, FileRecord, UPSTREAM_INDEX, batch, file_record, journal, journal_many, touch_project};

/// The statement that records a chunk of stored files (`size`, `metadata`,
/// `sha256`, `filename` per file; the plan walks the list and seeks each
/// file by its digest) and returns the `(index, project)` of each row it
/// changed.
static RECORD_DOWNLOADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE files SET size = COALESCE(size, batch.column1), fetched = TRUE,
             metadata_sha256 = COALESCE(batch.column2, metadata_sha256),
             serve_metadata = CASE WHEN batch.column2 IS NULL THEN serve_metadata ELSE TRUE END
         FROM ({}) AS batch
         WHERE files.sha256 = batch.column3 AND files.filename = batch.column4
           AND (size IS NULL OR fetched = FALSE
                OR (batch.column2 IS NOT NULL
                    AND (metadata_sha256 IS DISTINCT FROM batch.column2 OR serve_metadata = FALSE)))
         RETURNING index_name, project",
        batch::values_list(&["CAST({} AS BIGINT)", "CAST({} AS TEXT)", "{}", "{}"], 1)
    )
});

/// The statement that takes a chunk of blobs off the bounded cache's books.
static FORGET_CACHED: LazyLock<String> = LazyLock::new(|| {
    let params: Vec<String> = (1..=batch::WIDTH).map(|i| format!("${i}")).collect();
    format!("DELETE FROM cached_blobs WHERE sha256 IN ({})", params.join(", "))
});

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
        on_pool!(&self.pool, |pool| {
            let row = sqlx::query(
                "SELECT fetched_at_micros, found, source_url, etag, body_sha256 FROM upstream_pages WHERE name = $1",
            )
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                Ok(PageState {
                    fetched_at: Timestamp::from_microsecond(row.col("fetched_at_micros"))
                        .map_err(|_| DbError::Corrupt("upstream_pages.fetched_at_micros"))?,
                    found: row.col("found"),
                    source_url: row.col("source_url"),
                    etag: row.col("etag"),
                    body_sha256: row
                        .col::<Option<&str>>("body_sha256")
                        .map(|v| Sha256::from_str(v).map_err(|_| DbError::Corrupt("upstream_pages.body_sha256")))
                        .transpose()?,
                })
            })
            .transpose()
        })
    }

    /// Records that the stored page was confirmed current at `at`
    /// (a 304, or an identical body).
    pub async fn touch_page(&self, name: &NormalizedName, at: Timestamp, etag: Option<&str>) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("UPDATE upstream_pages SET fetched_at_micros = $1, etag = COALESCE($2, etag) WHERE name = $3")
                .bind(at.as_microsecond())
                .bind(etag)
                .bind(name.as_str())
                .execute(conn)
                .await?;
        });
        tx.commit().await
    }

    /// Records that every upstream answered 404 at `at`: the project leaves
    /// the index; its file rows stay, delisted, so URLs already served keep
    /// resolving to what is stored.
    pub async fn mark_page_missing(&self, name: &NormalizedName, at: Timestamp) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let removed = on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO upstream_pages (name, fetched_at_micros, found) VALUES ($1, $2, FALSE)
                 ON CONFLICT (name) DO UPDATE SET fetched_at_micros = excluded.fetched_at_micros, found = FALSE,
                     source_url = NULL, etag = NULL, body_sha256 = NULL",
            )
            .bind(name.as_str())
            .bind(at.as_microsecond())
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM projects WHERE index_name = $1 AND name = $2")
                .bind(UPSTREAM_INDEX)
                .bind(name.as_str())
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if removed > 0 {
            on_tx!(tx, |conn| {
                sqlx::query("UPDATE files SET listed = FALSE WHERE index_name = $1 AND project = $2")
                    .bind(UPSTREAM_INDEX)
                    .bind(name.as_str())
                    .execute(conn)
                    .await?;
            });
            journal(&mut tx, UPSTREAM_INDEX, name.as_str(), "gone upstream").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces what is listed for an upstream project with a freshly
    /// fetched page. What larder learned itself about a file (size,
    /// extracted metadata) is kept as long as the upstream lists the same
    /// digest under the same filename; its upload time is always the
    /// page's (none when the page gives none). A file whose bytes larder
    /// already stored never changes content: when the upstream lists other
    /// bytes under its filename, the stored one stays, and its filename is
    /// returned so the caller can say so. Files no longer listed are
    /// delisted, not forgotten, unless the page shares no file with the one
    /// it replaces (see [`keep_stored_listed`]).
    ///
    /// The page is written in one transaction, with the pages other tasks
    /// store meanwhile (a group commit, see [`super::page_writes`]): it is
    /// durable when this returns.
    pub async fn replace_page(
        &self,
        name: &NormalizedName,
        display_name: &str,
        state: &PageState,
        meta: &UpstreamMeta,
        files: &[FileRecord],
    ) -> Result<Vec<String>, DbError> {
        let page = PageWrite {
            name: name.clone(),
            display_name: display_name.to_owned(),
            state: state.clone(),
            meta: meta.clone(),
            files: files.to_vec(),
        };
        self.write_page(page).await
    }

    /// Records that a file's bytes are stored: from now on its content
    /// never changes, and its size is filled in where the upstream did not
    /// give it. Its upload time stays what the upstream said, or unknown:
    /// when larder fetched a file says nothing of when it was uploaded (the
    /// release-age policy keeps its own first-seen clock). The bounded
    /// cache counts its blob (asked for now; no longer evicted, if it was).
    pub async fn record_download(&self, sha256: &Sha256, filename: &str, size: u64) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let changed: Vec<(String, String)> = on_tx!(tx, |conn| {
            sqlx::query_as(
                "UPDATE files SET size = COALESCE(size, $1), fetched = TRUE
                 WHERE sha256 = $2 AND filename = $3 AND (size IS NULL OR fetched = FALSE)
                 RETURNING index_name, project",
            )
            .bind(size as i64)
            .bind(sha256.to_hex())
            .bind(filename)
            .fetch_all(conn)
            .await?
        });
        for (index, project) in &changed {
            journal(&mut tx, index, project, &format!("stored {filename}")).await?;
        }
        // Stored for a client: the bounded cache may evict it (again).
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO cached_blobs (sha256, size, last_access_micros) VALUES ($1, $2, $3)
                 ON CONFLICT (sha256) DO UPDATE SET size = excluded.size,
                     last_access_micros = excluded.last_access_micros, evicted_micros = NULL",
            )
            .bind(sha256.to_hex())
            .bind(size as i64)
            .bind(Timestamp::now().as_microsecond())
            .execute(conn)
            .await?;
        });
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
        for chunk in stored.chunks(batch::WIDTH) {
            let rows = batch::padded(chunk);
            let returned: Vec<(String, String)> = on_tx!(tx, |conn| {
                let mut update = sqlx::query_as(sqlx::AssertSqlSafe(RECORD_DOWNLOADS.as_str()));
                for file in rows.clone() {
                    update = update
                        .bind(file.size as i64)
                        .bind(file.metadata.map(|d| d.to_hex()))
                        .bind(file.sha256.to_hex())
                        .bind(&file.filename);
                }
                let returned = update.fetch_all(&mut *conn).await?;
                // Mirrored from now on: never evicted.
                let mut forget = sqlx::query(sqlx::AssertSqlSafe(FORGET_CACHED.as_str()));
                for file in rows {
                    forget = forget.bind(file.sha256.to_hex());
                }
                forget.execute(&mut *conn).await?;
                returned
            });
            changed.extend(returned);
        }
        let changed: Vec<_> = changed.into_iter().collect();
        journal_many(&mut tx, &changed, "stored files").await?;
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
        let changed: Vec<(String, String)> = on_tx!(tx, |conn| {
            sqlx::query_as(
                "UPDATE files SET metadata_sha256 = $1, serve_metadata = (serve_metadata OR $2)
                 WHERE sha256 = $3 AND filename = $4
                   AND (metadata_sha256 IS DISTINCT FROM $1 OR (serve_metadata = FALSE AND $2))
                 RETURNING index_name, project",
            )
            .bind(metadata.to_hex())
            .bind(advertise)
            .bind(sha256.to_hex())
            .bind(filename)
            .fetch_all(conn)
            .await?
        });
        for (index, project) in &changed {
            journal(&mut tx, index, project, &format!("metadata {filename}")).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The files an upstream project lists now.
    pub async fn upstream_files(&self, name: &NormalizedName) -> Result<Vec<FileRecord>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE index_name = 'upstream' AND project = $1 AND listed = TRUE ORDER BY filename"
            ))
            .bind(name.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter().map(file_record).collect()
        })
    }
}

/// A fetched upstream page to store ([`Database::replace_page`]).
#[derive(Debug)]
pub(crate) struct PageWrite {
    pub name: NormalizedName,
    pub display_name: String,
    pub state: PageState,
    pub meta: UpstreamMeta,
    pub files: Vec<FileRecord>,
}

/// Writes `page` in `tx` (see [`Database::replace_page`]); returns the
/// filenames whose stored bytes stay.
pub(crate) async fn replace_in(tx: &mut WriteTx, page: &PageWrite) -> Result<Vec<String>, DbError> {
    let PageWrite { name, display_name, state, meta, files } = page;
    upsert_page(tx, name.as_str(), state, meta).await?;
    let serial = journal(tx, UPSTREAM_INDEX, name.as_str(), "refresh").await?;
    touch_project(tx, UPSTREAM_INDEX, name.as_str(), display_name, serial).await?;
    // Every file of the project is delisted, then each one the page lists
    // is listed again by its upsert: no statement here reads more than the
    // project's own rows.
    let listed_before: std::collections::HashSet<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE files SET listed = FALSE WHERE index_name = $1 AND project = $2 AND listed = TRUE
             RETURNING filename",
        )
        .bind(UPSTREAM_INDEX)
        .bind(name.as_str())
        .fetch_all(conn)
        .await?
        .into_iter()
        .collect()
    });
    let replaced_whole = !listed_before.is_empty() && !files.iter().any(|f| listed_before.contains(&f.filename));
    let refused = upsert_upstream_files(tx, name, files).await?;
    for filename in &refused {
        // Its stored bytes stay behind the filename, still listed.
        on_tx!(tx, |conn| {
            sqlx::query("UPDATE files SET listed = TRUE WHERE index_name = $1 AND filename = $2")
                .bind(UPSTREAM_INDEX)
                .bind(filename)
                .execute(conn)
                .await?;
        });
    }
    if replaced_whole {
        keep_stored_listed(tx, name).await?;
    }
    Ok(refused)
}

/// A project row of index `$1` named `$2`, with the page-level fields of
/// its found upstream page (`page` is its name) when `$1` is `$3`, the
/// upstream index; the fields are read by [`page_meta`].
pub(crate) const PROJECT_WITH_META: &str =
    "SELECT p.display_name, p.serial, u.name AS page, u.versions, u.tracks, u.alternate_locations, u.status,
            u.status_reason, u.last_serial, u.namespaces
     FROM projects p LEFT JOIN upstream_pages u ON p.index_name = $3 AND u.name = p.name AND u.found = TRUE
     WHERE p.index_name = $1 AND p.name = $2";

/// The page-level fields of an `upstream_pages` row.
pub(crate) fn page_meta(row: &impl DbRow) -> Result<UpstreamMeta, DbError> {
    let list = |column: &'static str| -> Result<Vec<String>, DbError> {
        row.col::<Option<&str>>(column)
            .map_or(Ok(Vec::new()), |text| serde_json::from_str(text).map_err(|_| DbError::Corrupt(column)))
    };
    Ok(UpstreamMeta {
        versions: list("versions")?,
        tracks: list("tracks")?,
        alternate_locations: list("alternate_locations")?,
        status: row
            .col::<Option<String>>("status")
            .map(|status| ProjectStatus { status, reason: row.col("status_reason") }),
        last_serial: row.col::<Option<i64>>("last_serial").map(|serial| serial as u64),
        namespaces: row.col::<Option<&str>>("namespaces").map_or(Ok(BTreeMap::new()), |text| {
            serde_json::from_str(text).map_err(|_| DbError::Corrupt("upstream_pages.namespaces"))
        })?,
    })
}

/// Stores an upstream page's state and page-level fields, found.
pub(crate) async fn upsert_page(
    tx: &mut WriteTx,
    name: &str,
    state: &PageState,
    meta: &UpstreamMeta,
) -> Result<(), DbError> {
    let json = |list: &[String]| serde_json::to_string(list).expect("a list of strings serializes");
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO upstream_pages (name, fetched_at_micros, found, source_url, etag, body_sha256, versions,
                                         tracks, alternate_locations, status, status_reason, last_serial,
                                         namespaces)
             VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (name) DO UPDATE SET
                 fetched_at_micros = excluded.fetched_at_micros, found = TRUE, source_url = excluded.source_url,
                 etag = excluded.etag, body_sha256 = excluded.body_sha256, versions = excluded.versions,
                 tracks = excluded.tracks, alternate_locations = excluded.alternate_locations,
                 status = excluded.status, status_reason = excluded.status_reason,
                 last_serial = excluded.last_serial, namespaces = excluded.namespaces",
        )
        .bind(name)
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
        .bind(
            (!meta.namespaces.is_empty())
                .then(|| serde_json::to_string(&meta.namespaces).expect("a map of strings serializes")),
        )
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Keeps the files whose bytes larder stored listed, for a page that
/// shares no file with the page it replaces: an upstream that lost or
/// replaced the project, or answers for another one, must not hide every
/// wheel larder holds. (A page that drops some files but keeps others is
/// an ordinary deletion: those files are delisted.)
async fn keep_stored_listed(tx: &mut WriteTx, name: &NormalizedName) -> Result<(), DbError> {
    let kept = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE files SET listed = TRUE
             WHERE index_name = $1 AND project = $2 AND fetched = TRUE AND listed = FALSE",
        )
        .bind(UPSTREAM_INDEX)
        .bind(name.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    if kept > 0 {
        tracing::warn!(
            project = %name,
            kept,
            "the upstream page shares no file with the one it replaces; the files larder stored stay listed"
        );
    }
    Ok(())
}

/// The statements that upsert the rows of `n` files of an upstream page
/// (index 0 holds the one for a single file, up to [`batch::WIDTH`]) and
/// return the filename of each row they inserted or updated: a row whose
/// bytes are stored keeps them when the page names other bytes.
static UPSERT_UPSTREAM_FILES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=batch::WIDTH)
        .map(|rows| {
            format!(
                "{} {}
                 ON CONFLICT (index_name, filename) DO UPDATE SET
                     project = excluded.project,
                     version = excluded.version,
                     size = COALESCE(excluded.size, CASE WHEN files.sha256 = excluded.sha256 THEN files.size END),
                     upload_time_text = excluded.upload_time_text,
                     upload_time_micros = excluded.upload_time_micros,
                     metadata_sha256 = COALESCE(excluded.metadata_sha256,
                         CASE WHEN files.sha256 = excluded.sha256 THEN files.metadata_sha256 END),
                     serve_metadata = (excluded.serve_metadata
                         OR CASE WHEN files.sha256 = excluded.sha256 THEN files.serve_metadata ELSE FALSE END),
                     sha256 = excluded.sha256,
                     requires_python = excluded.requires_python,
                     yanked = excluded.yanked,
                     yanked_reason = excluded.yanked_reason,
                     gpg_sig = excluded.gpg_sig,
                     provenance = excluded.provenance,
                     url = excluded.url,
                     listed = TRUE
                 WHERE files.fetched = FALSE OR files.sha256 = excluded.sha256
                 RETURNING filename",
                insert_into_files!(),
                batch::values_rows(&["{}"; 16], 1, rows)
            )
        })
        .collect()
});

/// Inserts or updates the rows of the files an upstream page lists, and
/// lists them, a chunk of files per statement. Returns the filenames it
/// left unchanged: rows whose bytes are stored, for which the page names
/// other bytes. A filename listed twice counts once, as listed last.
async fn upsert_upstream_files(
    tx: &mut WriteTx,
    project: &NormalizedName,
    files: &[FileRecord],
) -> Result<Vec<String>, DbError> {
    let mut last = std::collections::HashMap::new();
    for (at, file) in files.iter().enumerate() {
        last.insert(file.filename.as_str(), at);
    }
    let unique: Vec<&FileRecord> =
        files.iter().enumerate().filter(|(at, file)| last[file.filename.as_str()] == *at).map(|(_, f)| f).collect();
    let mut upserted = std::collections::HashSet::new();
    for chunk in unique.chunks(batch::WIDTH) {
        let returned: Vec<String> = on_tx!(tx, |conn| {
            let mut upsert = sqlx::query_scalar(sqlx::AssertSqlSafe(UPSERT_UPSTREAM_FILES[chunk.len() - 1].as_str()));
            for file in chunk {
                upsert = bind_file_row!(upsert, UPSTREAM_INDEX, project.as_str(), file);
            }
            upsert.fetch_all(conn).await?
        });
        upserted.extend(returned);
    }
    Ok(unique.into_iter().filter(|f| !upserted.contains(&f.filename)).map(|f| f.filename.clone()).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;

    pub(crate) fn listed(filename: &str, content: &[u8]) -> FileRecord {
        FileRecord {
            filename: filename.to_owned(),
            version: "1.0".to_owned(),
            sha256: Sha256::of(content),
            size: None,
            upload_time: None,
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
            yanked: None,
            gpg_sig: Some(false),
            provenance: None,
            url: Some(format!("http://127.0.0.1:9/files/{filename}")),
        }
    }

    fn state(at: Timestamp) -> PageState {
        PageState {
            fetched_at: at,
            found: true,
            source_url: Some("http://127.0.0.1:9/simple/demo/".into()),
            etag: Some("\"v1\"".into()),
            body_sha256: Some(Sha256::of(b"page")),
        }
    }

    each_backend! {
    /// Every statement of the proxy's page and download path, on both
    /// backends: a page replaces the listed files, stored files keep their
    /// bytes and what larder learned, metadata and a 404 are recorded.
    async fn pages_downloads_and_metadata_are_recorded(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let name = NormalizedName::new("Demo").unwrap();
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let meta = UpstreamMeta {
            versions: vec!["1.0".into()],
            tracks: vec![],
            alternate_locations: vec!["http://127.0.0.1:9/alt/".into()],
            status: Some(ProjectStatus { status: "active".into(), reason: None }),
            last_serial: Some(42),
            namespaces: [("namespace".into(), r#"{"prefix":"demo","open":true}"#.into())].into(),
        };
        let (wheel, sdist) = (listed("demo-1.0-py3-none-any.whl", b"wheel"), listed("demo-1.0.tar.gz", b"sdist"));
        let refused = db.replace_page(&name, "Demo", &state(at), &meta, &[wheel.clone(), sdist.clone()]).await.unwrap();
        assert!(refused.is_empty());
        assert_eq!(db.page_state(&name).await.unwrap(), Some(state(at)));
        let project = db.project(UPSTREAM_INDEX, &name).await.unwrap().unwrap();
        assert_eq!(project.upstream.as_ref(), Some(&meta));
        // Byte order: `-` sorts before `.`.
        assert_eq!(project.files, [wheel.clone(), sdist.clone()]);

        db.record_download(&wheel.sha256, &wheel.filename, 5).await.unwrap();
        let metadata = Sha256::of(b"METADATA");
        db.record_metadata(&wheel.sha256, &wheel.filename, &metadata, true).await.unwrap();
        let stored = StoredDownload { sha256: sdist.sha256, filename: sdist.filename.clone(), size: 5, metadata: None };
        db.record_downloads(&[stored]).await.unwrap();
        let files = db.upstream_files(&name).await.unwrap();
        assert_eq!((files[0].size, files[0].metadata_sha256, files[0].serve_metadata), (Some(5), Some(metadata), true));
        assert_eq!(files[1].size, Some(5));

        // The upstream now names other bytes for the stored wheel: refused,
        // and what larder learned about it stays.
        let mut other = wheel.clone();
        other.sha256 = Sha256::of(b"other");
        let later = Timestamp::from_second(1_700_000_100).unwrap();
        let refused = db.replace_page(&name, "Demo", &state(later), &meta, &[other, sdist.clone()]).await.unwrap();
        assert_eq!(refused, std::slice::from_ref(&wheel.filename));
        let files = db.upstream_files(&name).await.unwrap();
        assert_eq!((files[0].sha256, files[0].metadata_sha256), (wheel.sha256, Some(metadata)));

        db.touch_page(&name, later, Some("\"v2\"")).await.unwrap();
        assert_eq!(db.page_state(&name).await.unwrap().unwrap().etag.as_deref(), Some("\"v2\""));
        let serial = db.last_serial().await.unwrap();
        db.mark_page_missing(&name, later).await.unwrap();
        assert!(!db.page_state(&name).await.unwrap().unwrap().found);
        assert!(db.project(UPSTREAM_INDEX, &name).await.unwrap().is_none());
        assert!(db.last_serial().await.unwrap() > serial);
        assert!(!db.file_rows(&wheel.sha256, &wheel.filename).await.unwrap().is_empty(), "a delisted file resolves");
    }
    }

    each_backend! {
    /// A bulk job's batch longer than one statement's chunk (the last
    /// chunk short): every file is recorded with its size and metadata,
    /// leaves the bounded cache's books, and each project changed gets one
    /// journal entry; recording the batch again changes nothing.
    async fn a_batch_of_downloads_is_recorded_a_chunk_at_a_time(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let projects: Vec<NormalizedName> = (0..20).map(|p| NormalizedName::new(&format!("p{p}")).unwrap()).collect();
        let mut stored = Vec::new();
        for (p, name) in projects.iter().enumerate() {
            let files: Vec<FileRecord> =
                (0..2).map(|v| listed(&format!("p{p}-{v}.0.tar.gz"), format!("p{p} {v}").as_bytes())).collect();
            db.replace_page(name, name.as_str(), &state(Timestamp::now()), &UpstreamMeta::default(), &files)
                .await
                .unwrap();
            for (v, file) in files.iter().enumerate() {
                // One file of each project was stored for a client before.
                if v == 0 {
                    db.record_download(&file.sha256, &file.filename, 10).await.unwrap();
                }
                let metadata = (v == 1).then(|| Sha256::of(file.filename.as_bytes()));
                stored.push(StoredDownload { sha256: file.sha256, filename: file.filename.clone(), size: 10, metadata });
            }
        }
        assert!(stored.len() > batch::WIDTH && stored.len() % batch::WIDTH != 0);
        let serial = db.last_serial().await.unwrap();
        db.record_downloads(&stored).await.unwrap();
        let changes = db.changes_since(serial, 100).await.unwrap();
        let mut changed: Vec<_> = changes.iter().map(|(_, project)| project.clone()).collect();
        changed.sort();
        let mut expected = projects.clone();
        expected.sort();
        assert_eq!(changed, expected, "one journal entry per project");
        for name in &projects {
            let files = db.upstream_files(name).await.unwrap();
            assert!(files.iter().all(|f| f.size == Some(10)), "{files:?}");
            let metadata: Vec<_> = files.iter().map(|f| (f.metadata_sha256, f.serve_metadata)).collect();
            assert_eq!(metadata, [(None, false), (Some(Sha256::of(files[1].filename.as_bytes())), true)]);
        }
        let sizes = db.store_sizes(|_| false).await.unwrap();
        assert_eq!((sizes.cached.files, sizes.mirrored.files), (0, stored.len() as u64), "none evictable");
        let serial = db.last_serial().await.unwrap();
        db.record_downloads(&stored).await.unwrap();
        assert_eq!(db.last_serial().await.unwrap(), serial, "nothing changed the second time");
    }
    }
}
