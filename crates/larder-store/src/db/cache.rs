//! The bounded cache's records: which blobs the proxy stored for clients
//! (and so may evict), when each was last asked for, which were evicted,
//! the pinned project patterns, and the store's sizes by kind.
//!
//! The SQL here is portable (numbered placeholders, `ON CONFLICT`, no
//! engine-specific function).

use std::collections::HashMap;
use std::str::FromStr;

use futures_util::TryStreamExt;
use jiff::Timestamp;
use larder_index::{NormalizedName, Sha256};

use super::backend::{on_pool, on_tx};
use super::{Database, DbError};

/// The count and total size of the rows of a `FROM` clause that follows,
/// as a literal for `concat!` (queries must be static strings). The sum is
/// cast back to BIGINT: PostgreSQL sums BIGINTs as NUMERIC.
macro_rules! kind_size {
    () => {
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT)"
    };
}

/// A count of distinct blobs and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSize {
    /// Distinct blobs (distribution files).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl KindSize {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// The distribution files stored, by kind. A blob shared by rows of
/// several kinds counts once, in the first kind that keeps it: hosted,
/// then mirrored, then cached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreSizes {
    /// Uploaded to (or added to) a hosted index: never evicted.
    pub hosted: KindSize,
    /// Stored by `larder mirror` or `larder import` (or by a proxy before
    /// larder kept cache records): never evicted.
    pub mirrored: KindSize,
    /// Stored by the proxy for clients, pinned or not.
    pub cached: KindSize,
    /// Of the cached files, those of no pinned project: what eviction may
    /// remove.
    pub evictable: KindSize,
    /// Cached files evicted (listed still, fetched again on demand).
    pub evicted: KindSize,
}

/// A blob the proxy stored for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedBlob {
    /// Its digest.
    pub sha256: Sha256,
    /// Its size.
    pub size: u64,
    /// When a client last asked for it (microseconds; coarse).
    pub last_access_micros: i64,
}

/// What refers to a cached blob, for eviction to decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobUse {
    /// A hosted file shares the blob: it is never evicted.
    pub hosted: bool,
    /// The upstream projects that list it.
    pub projects: Vec<NormalizedName>,
}

impl Database {
    /// Records the last accesses of cached blobs (each `(digest, when)`),
    /// in one transaction. Blobs that are not cached are left alone, and a
    /// stamp never goes back.
    pub async fn record_accesses(&self, accesses: &[(Sha256, Timestamp)]) -> Result<(), DbError> {
        if accesses.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for (digest, at) in accesses {
            on_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE cached_blobs SET last_access_micros = $1 WHERE sha256 = $2 AND last_access_micros < $1",
                )
                .bind(at.as_microsecond())
                .bind(digest.to_hex())
                .execute(conn)
                .await?;
            });
        }
        tx.commit().await
    }

    /// The cached blobs that are stored (not evicted): how many, how large.
    pub async fn cached_total(&self) -> Result<KindSize, DbError> {
        self.kind_size(concat!(kind_size!(), " FROM cached_blobs WHERE evicted_micros IS NULL")).await
    }

    /// Up to `limit` stored cached blobs, least recently asked for first,
    /// after `after` (the last of the previous batch).
    pub async fn eviction_candidates(
        &self,
        after: Option<&CachedBlob>,
        limit: i64,
    ) -> Result<Vec<CachedBlob>, DbError> {
        let (micros, digest) = after.map_or((i64::MIN, String::new()), |b| (b.last_access_micros, b.sha256.to_hex()));
        let rows: Vec<(String, i64, i64)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as(
                "SELECT sha256, size, last_access_micros FROM cached_blobs
                 WHERE evicted_micros IS NULL
                   AND (last_access_micros > $1 OR (last_access_micros = $1 AND sha256 > $2))
                 ORDER BY last_access_micros, sha256 LIMIT $3",
            )
            .bind(micros)
            .bind(digest)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(sha256, size, last_access_micros)| {
                Ok(CachedBlob { sha256: digest_of(&sha256)?, size: size as u64, last_access_micros })
            })
            .collect()
    }

    /// What refers to a blob: whether a hosted file does, and the upstream
    /// projects that list it.
    pub async fn blob_use(&self, digest: &Sha256) -> Result<BlobUse, DbError> {
        let rows: Vec<(String, String)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT DISTINCT index_name, project FROM files WHERE sha256 = $1")
                .bind(digest.to_hex())
                .fetch_all(pool)
                .await?
        });
        let mut used = BlobUse::default();
        for (index, project) in &rows {
            if index == super::UPSTREAM_INDEX {
                used.projects.push(NormalizedName::from_normalized(project).ok_or(DbError::Corrupt("files.project"))?);
            } else {
                used.hosted = true;
            }
        }
        Ok(used)
    }

    /// Records that a cached blob was evicted at `at`, unless a client
    /// asked for it (or it was stored again) since it was chosen. Returns
    /// whether it was recorded. Call after removing the blob: a crash in
    /// between leaves a stored-looking row that the next pass evicts again.
    pub async fn mark_evicted(&self, blob: &CachedBlob, at: Timestamp) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let changed = on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE cached_blobs SET evicted_micros = $1
                 WHERE sha256 = $2 AND last_access_micros = $3 AND evicted_micros IS NULL",
            )
            .bind(at.as_microsecond())
            .bind(blob.sha256.to_hex())
            .bind(blob.last_access_micros)
            .execute(conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// Stops treating a blob as cached (a hosted file shares it): it is
    /// kept, like the hosted file.
    pub async fn forget_cached(&self, digest: &Sha256) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM cached_blobs WHERE sha256 = $1").bind(digest.to_hex()).execute(conn).await?;
        });
        tx.commit().await
    }

    /// The distribution files stored, by kind; `pinned` says which
    /// upstream projects are pinned (their cached files are not
    /// evictable). Reads every file row: for reports, not for requests.
    pub async fn store_sizes(&self, pinned: impl Fn(&NormalizedName) -> bool) -> Result<StoreSizes, DbError> {
        let hosted = self
            .kind_size(concat!(
                kind_size!(),
                " FROM (SELECT sha256, MAX(size) AS size FROM files WHERE index_name <> 'upstream' GROUP BY sha256)
                 AS hosted"
            ))
            .await?;
        let mirrored = self
            .kind_size(concat!(
                kind_size!(),
                " FROM (SELECT f.sha256, MAX(f.size) AS size FROM files f
                     WHERE f.index_name = 'upstream' AND f.fetched = TRUE
                       AND NOT EXISTS (SELECT 1 FROM cached_blobs c WHERE c.sha256 = f.sha256)
                       AND NOT EXISTS (SELECT 1 FROM files h WHERE h.sha256 = f.sha256 AND h.index_name <> 'upstream')
                     GROUP BY f.sha256) AS mirrored"
            ))
            .await?;
        let evicted =
            self.kind_size(concat!(kind_size!(), " FROM cached_blobs WHERE evicted_micros IS NOT NULL")).await?;
        let mut sizes = StoreSizes { hosted, mirrored, evicted, ..StoreSizes::default() };
        // Cached blobs with the projects that list them: pinned when any is.
        let mut cached: HashMap<String, (u64, bool)> = HashMap::new();
        on_pool!(&self.pool, |pool| {
            let mut rows = sqlx::query_as::<_, (String, i64, String)>(
                "SELECT c.sha256, c.size, f.project FROM cached_blobs c JOIN files f ON f.sha256 = c.sha256
                 WHERE c.evicted_micros IS NULL AND f.index_name = 'upstream'
                   AND NOT EXISTS (SELECT 1 FROM files h WHERE h.sha256 = c.sha256 AND h.index_name <> 'upstream')",
            )
            .fetch(pool);
            while let Some((sha256, size, project)) = rows.try_next().await? {
                let project = NormalizedName::from_normalized(&project).ok_or(DbError::Corrupt("files.project"))?;
                let entry = cached.entry(sha256).or_insert((size as u64, false));
                entry.1 |= pinned(&project);
            }
        });
        for (size, pinned) in cached.into_values() {
            sizes.cached.add(size);
            if !pinned {
                sizes.evictable.add(size);
            }
        }
        Ok(sizes)
    }

    /// Pins project patterns (normalized globs); pinning one twice is no
    /// change. Returns the patterns that were new.
    pub async fn add_pins(&self, patterns: &[String]) -> Result<Vec<String>, DbError> {
        let mut tx = self.write().await?;
        let mut added = Vec::new();
        for pattern in patterns {
            let inserted = on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO pins (pattern, created_micros) VALUES ($1, $2) ON CONFLICT (pattern) DO NOTHING",
                )
                .bind(pattern)
                .bind(Timestamp::now().as_microsecond())
                .execute(conn)
                .await?
                .rows_affected()
            });
            if inserted > 0 {
                added.push(pattern.clone());
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Unpins patterns; returns those that were pinned.
    pub async fn remove_pins(&self, patterns: &[String]) -> Result<Vec<String>, DbError> {
        let mut tx = self.write().await?;
        let mut removed = Vec::new();
        for pattern in patterns {
            let deleted = on_tx!(tx, |conn| {
                sqlx::query("DELETE FROM pins WHERE pattern = $1").bind(pattern).execute(conn).await?.rows_affected()
            });
            if deleted > 0 {
                removed.push(pattern.clone());
            }
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// The pinned patterns, sorted.
    pub async fn pins(&self) -> Result<Vec<String>, DbError> {
        Ok(on_pool!(&self.pool, |pool| {
            sqlx::query_scalar("SELECT pattern FROM pins ORDER BY pattern").fetch_all(pool).await?
        }))
    }

    /// Runs a [`kind_size!`] query.
    async fn kind_size(&self, sql: &'static str) -> Result<KindSize, DbError> {
        let (files, bytes): (i64, i64) = on_pool!(&self.pool, |pool| sqlx::query_as(sql).fetch_one(pool).await?);
        Ok(KindSize { files: files as u64, bytes: bytes as u64 })
    }
}

fn digest_of(text: &str) -> Result<Sha256, DbError> {
    Sha256::from_str(text).map_err(|_| DbError::Corrupt("cached_blobs.sha256"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;
    use crate::db::proxied::{PageState, UpstreamMeta};
    use crate::db::{FileRecord, NewFile};

    fn upstream_file(filename: &str, content: &[u8]) -> FileRecord {
        FileRecord {
            filename: filename.to_owned(),
            version: "1.0".to_owned(),
            sha256: Sha256::of(content),
            size: Some(content.len() as u64),
            upload_time: None,
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
            yanked: None,
            gpg_sig: None,
            provenance: None,
            url: Some(format!("http://127.0.0.1:9/{filename}")),
        }
    }

    async fn list(db: &Database, project: &str, files: &[FileRecord]) {
        let state =
            PageState { fetched_at: Timestamp::now(), found: true, source_url: None, etag: None, body_sha256: None };
        let name = NormalizedName::new(project).unwrap();
        db.replace_page(&name, project, &state, &UpstreamMeta::default(), files).await.unwrap();
    }

    /// `second` seconds from now (downloads are recorded at the time
    /// they are stored, so accesses are noted later).
    fn at(second: i64) -> Timestamp {
        Timestamp::now() + jiff::SignedDuration::from_secs(second)
    }

    each_backend! {
    /// Cached (proxied), mirrored and hosted blobs are told apart, a blob
    /// shared with a hosted file is hosted, and pins take cached files out
    /// of the evictable ones.
    async fn sizes_by_kind_and_eviction_order(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let old = upstream_file("old-1.0.tar.gz", b"old, 10 b");
        let new = upstream_file("new-1.0.tar.gz", b"new, 100 bytes".repeat(7).as_slice());
        let pinned = upstream_file("pinned-1.0.tar.gz", b"pinned");
        let mirrored = upstream_file("mirrored-1.0.tar.gz", b"mirrored");
        let shared = upstream_file("shared-1.0.tar.gz", b"shared with a hosted file");
        for (project, file) in
            [("old", &old), ("new", &new), ("pinned", &pinned), ("mirrored", &mirrored), ("shared", &shared)]
        {
            list(&db, project, std::slice::from_ref(file)).await;
        }
        for file in [&old, &new, &pinned, &shared] {
            db.record_download(&file.sha256, &file.filename, file.size.unwrap()).await.unwrap();
        }
        let stored = crate::StoredDownload {
            sha256: mirrored.sha256,
            filename: mirrored.filename.clone(),
            size: mirrored.size.unwrap(),
            metadata: None,
        };
        db.record_downloads(&[stored]).await.unwrap();
        let hosted = NewFile {
            project: NormalizedName::new("local-copy").unwrap(),
            display_name: "local-copy".to_owned(),
            filename: "local_copy-1.0.tar.gz".to_owned(),
            version: "1.0".to_owned(),
            sha256: shared.sha256,
            size: shared.size.unwrap(),
            upload_time: at(0),
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
        };
        db.add_files("local", &[hosted]).await.unwrap();

        let size = |f: &FileRecord| KindSize { files: 1, bytes: f.size.unwrap() };
        let is_pinned = |name: &NormalizedName| name.as_str() == "pinned";
        let sizes = db.store_sizes(is_pinned).await.unwrap();
        assert_eq!(sizes.hosted, size(&shared));
        assert_eq!(sizes.mirrored, size(&mirrored));
        let cached = [&old, &new, &pinned].map(|f| f.size.unwrap());
        assert_eq!(sizes.cached, KindSize { files: 3, bytes: cached.iter().sum() });
        assert_eq!(sizes.evictable, KindSize { files: 2, bytes: cached[0] + cached[1] });
        assert_eq!(db.cached_total().await.unwrap().files, 4, "the shared blob is still on the cache's books");

        // Least recently asked for first; an access moves `old` last.
        db.record_accesses(&[(old.sha256, at(20))]).await.unwrap();
        let order: Vec<Sha256> =
            db.eviction_candidates(None, 10).await.unwrap().into_iter().map(|b| b.sha256).collect();
        assert_eq!(order, [new.sha256, pinned.sha256, shared.sha256, old.sha256]);
        let first = db.eviction_candidates(None, 1).await.unwrap();
        let rest = db.eviction_candidates(first.last(), 10).await.unwrap();
        assert_eq!(rest.len(), 3, "the cursor goes on after the first batch");
        assert!(db.blob_use(&shared.sha256).await.unwrap().hosted);
        assert_eq!(db.blob_use(&pinned.sha256).await.unwrap().projects, [NormalizedName::new("pinned").unwrap()]);

        // Eviction is recorded only if nobody asked since it was chosen.
        let candidate = db.eviction_candidates(None, 1).await.unwrap()[0];
        db.record_accesses(&[(candidate.sha256, at(30))]).await.unwrap();
        assert!(!db.mark_evicted(&candidate, at(31)).await.unwrap(), "asked for after being chosen");
        let candidate = db.eviction_candidates(None, 1).await.unwrap()[0];
        assert!(db.mark_evicted(&candidate, at(32)).await.unwrap());
        let sizes = db.store_sizes(is_pinned).await.unwrap();
        assert_eq!(sizes.evicted, KindSize { files: 1, bytes: pinned.size.unwrap() });
        // Stored again for a client: cached again.
        db.record_download(&pinned.sha256, &pinned.filename, pinned.size.unwrap()).await.unwrap();
        assert_eq!(db.store_sizes(is_pinned).await.unwrap().evicted, KindSize::default());
        db.forget_cached(&shared.sha256).await.unwrap();
        assert_eq!(db.cached_total().await.unwrap().files, 3);
    }
    }

    each_backend! {
    async fn pins_are_added_listed_and_removed_once(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let patterns = ["numpy".to_owned(), "django-*".to_owned()];
        assert_eq!(db.add_pins(&patterns).await.unwrap(), patterns);
        assert!(db.add_pins(&patterns[..1]).await.unwrap().is_empty());
        assert_eq!(db.pins().await.unwrap(), ["django-*", "numpy"]);
        assert_eq!(db.remove_pins(&["numpy".to_owned(), "flask".to_owned()]).await.unwrap(), ["numpy"]);
        assert_eq!(db.pins().await.unwrap(), ["django-*"]);
    }
    }
}
