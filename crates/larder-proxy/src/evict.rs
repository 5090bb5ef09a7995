//! The bounded cache: when the files the proxy stored for clients take
//! more than the cap, those asked for least recently are evicted, in a
//! background task, until they fit again.
//!
//! - Only blobs the proxy stored for clients count and may go. Hosted
//!   uploads and what `larder mirror` or `larder import` stored are never
//!   evicted, nor are the files of pinned projects (`larder pin`, or the
//!   `pin` patterns of the config); a blob that a hosted file shares is
//!   kept like the hosted file.
//! - Access times cost no database write per request: a request notes
//!   the digest in a map in memory, and each pass writes the map in one
//!   transaction. So they are as coarse as the pass interval.
//! - An evicted file keeps its rows: pages still list it, and the next
//!   request fetches it again (through the store's blob API, whatever
//!   the backend).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use larder_index::{PatternError, ProjectPatterns, Sha256};
use larder_store::{BlobError, CachedBlob, DbError, Store};
pub use larder_store::{KindSize, StoreSizes};
use tokio::sync::Notify;

/// Candidates read per query.
const BATCH: i64 = 256;

/// The cap and what is exempt from it.
#[derive(Clone, Debug)]
pub struct CacheLimit {
    /// The most bytes of cached files kept.
    pub max_bytes: u64,
    /// Projects never evicted (globs over normalized names), besides
    /// those pinned in the store.
    pub pins: Vec<String>,
    /// How often a pass runs (a pass also runs soon after a download is
    /// stored).
    pub interval: Duration,
}

/// The default time between passes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Why an eviction pass failed.
#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A pinned pattern is not a valid glob.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Bytes of cached files before the pass.
    pub before: u64,
    /// Files evicted.
    pub evicted: u64,
    /// Their bytes.
    pub freed: u64,
}

/// Counters since start, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvictionCounts {
    /// Files evicted.
    pub files: u64,
    /// Bytes evicted.
    pub bytes: u64,
    /// Passes that failed.
    pub failures: u64,
    /// Bytes of cached files after the last pass.
    pub cached_bytes: u64,
}

/// The pins of the store (`larder pin`) and `extra` ones (the config's),
/// as one set.
pub async fn pins(store: &Store, extra: &[String]) -> Result<ProjectPatterns, EvictError> {
    let mut patterns = store.db().pins().await?;
    patterns.extend(extra.iter().cloned());
    Ok(ProjectPatterns::new(&patterns)?)
}

/// The distribution files stored, by kind (hosted, mirrored, cached,
/// evictable, evicted), with the store's pins and `extra` ones. Reads
/// every file row: for reports.
pub async fn store_sizes(store: &Store, extra_pins: &[String]) -> Result<StoreSizes, EvictError> {
    let pins = pins(store, extra_pins).await?;
    Ok(store.db().store_sizes(|project| pins.matches(project)).await?)
}

/// What became of an eviction candidate.
enum Fate {
    /// It stays (pinned, or asked for meanwhile).
    Kept,
    /// A hosted file shares it: it stays, no longer counted as cached.
    OffTheBooks,
    /// Gone from the blob store.
    Evicted,
}

/// The eviction state of one proxy.
pub(crate) struct Eviction {
    store: Store,
    /// Replaced by a configuration reload.
    limit: ArcSwap<CacheLimit>,
    /// Digests asked for since the last flush, with when.
    accesses: Mutex<HashMap<Sha256, Timestamp>>,
    wake: Notify,
    files: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
    cached_bytes: AtomicU64,
}

impl Eviction {
    pub(crate) fn new(store: Store, limit: CacheLimit) -> Self {
        Self {
            store,
            limit: ArcSwap::from_pointee(limit),
            accesses: Mutex::default(),
            wake: Notify::new(),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            cached_bytes: AtomicU64::new(0),
        }
    }

    /// Notes that a client asked for a blob (a map insert, no I/O).
    pub(crate) fn note(&self, sha256: &Sha256) {
        self.accesses.lock().expect("never poisoned").insert(*sha256, Timestamp::now());
    }

    /// Sets a new cap (and pins), and asks for a pass to apply it.
    pub(crate) fn set_limit(&self, limit: CacheLimit) {
        self.limit.store(std::sync::Arc::new(limit));
        self.wake();
    }

    /// Asks for a pass soon (a download was stored).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn counts(&self) -> EvictionCounts {
        EvictionCounts {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            cached_bytes: self.cached_bytes.load(Ordering::Relaxed),
        }
    }

    /// Runs passes forever: every interval, and soon after a download.
    pub(crate) async fn run(&self) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.limit.load().interval) => {}
                () = self.wake.notified() => {}
            }
            if let Err(error) = self.pass().await {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "cache eviction pass failed; trying again later");
            }
        }
    }

    /// Writes the noted accesses, then evicts until the cached files fit
    /// under the cap (or nothing evictable is left).
    pub(crate) async fn pass(&self) -> Result<PassReport, EvictError> {
        self.flush().await?;
        let limit = self.limit.load_full();
        let db = self.store.db();
        let mut total = db.cached_total().await?.bytes;
        let mut report = PassReport { before: total, ..PassReport::default() };
        if total > limit.max_bytes {
            let pins = pins(&self.store, &limit.pins).await?;
            let mut cursor: Option<CachedBlob> = None;
            'batches: while total > limit.max_bytes {
                let batch = db.eviction_candidates(cursor.as_ref(), BATCH).await?;
                let Some(last) = batch.last() else { break };
                cursor = Some(*last);
                for blob in batch {
                    if total <= limit.max_bytes {
                        break 'batches;
                    }
                    match self.evict(&blob, &pins).await? {
                        Fate::Kept => {}
                        Fate::OffTheBooks => total = total.saturating_sub(blob.size),
                        Fate::Evicted => {
                            total = total.saturating_sub(blob.size);
                            report.evicted += 1;
                            report.freed += blob.size;
                        }
                    }
                }
            }
        }
        self.cached_bytes.store(total, Ordering::Relaxed);
        Ok(report)
    }

    /// Evicts one candidate unless it is kept.
    async fn evict(&self, blob: &CachedBlob, pins: &ProjectPatterns) -> Result<Fate, EvictError> {
        if self.accesses.lock().expect("never poisoned").contains_key(&blob.sha256) {
            return Ok(Fate::Kept);
        }
        let db = self.store.db();
        let used = db.blob_use(&blob.sha256).await?;
        if used.hosted {
            db.forget_cached(&blob.sha256).await?;
            return Ok(Fate::OffTheBooks);
        }
        if let Some(project) = used.projects.iter().find(|p| pins.matches(p)) {
            tracing::debug!(sha256 = %blob.sha256, %project, "pinned; not evicted");
            return Ok(Fate::Kept);
        }
        self.store.blobs().remove(&blob.sha256).await?;
        if !db.mark_evicted(blob, Timestamp::now()).await? {
            // Asked for, or stored again, since it was chosen.
            return Ok(Fate::Kept);
        }
        let idle = Timestamp::from_microsecond(blob.last_access_micros)
            .ok()
            .and_then(|at| (Timestamp::now() - at).total(jiff::Unit::Second).ok())
            .unwrap_or_default() as u64;
        let projects: Vec<&str> = used.projects.iter().map(|p| p.as_str()).collect();
        tracing::info!(sha256 = %blob.sha256, size = blob.size, idle_secs = idle, projects = ?projects, "evicted from the cache");
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(blob.size, Ordering::Relaxed);
        Ok(Fate::Evicted)
    }

    /// Writes the accesses noted since the last flush.
    async fn flush(&self) -> Result<(), DbError> {
        let noted = std::mem::take(&mut *self.accesses.lock().expect("never poisoned"));
        let accesses: Vec<(Sha256, Timestamp)> = noted.into_iter().collect();
        self.store.db().record_accesses(&accesses).await
    }
}

#[cfg(test)]
mod tests {
    use larder_index::NormalizedName;
    use larder_store::{FileRecord, NewFile, PageState, UpstreamMeta};

    use super::*;

    /// Lists `filename` (100 bytes of `fill`) upstream under `project` and
    /// stores it as the proxy does for a client.
    async fn cached(store: &Store, project: &str, fill: u8) -> Sha256 {
        let content = [fill; 100];
        let blob = store.blobs().put_bytes(&content, None).await.unwrap();
        let filename = format!("{project}-1.0.tar.gz");
        let file = FileRecord {
            filename: filename.clone(),
            version: "1.0".into(),
            sha256: blob.sha256,
            size: Some(100),
            upload_time: None,
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
            yanked: None,
            gpg_sig: None,
            provenance: None,
            url: Some(format!("http://127.0.0.1:9/{filename}")),
        };
        let state =
            PageState { fetched_at: Timestamp::now(), found: true, source_url: None, etag: None, body_sha256: None };
        let name = NormalizedName::new(project).unwrap();
        store.db().replace_page(&name, project, &state, &UpstreamMeta::default(), &[file]).await.unwrap();
        store.db().record_download(&blob.sha256, &filename, 100).await.unwrap();
        blob.sha256
    }

    /// Oldest first: an unpinned file goes, a file whose bytes a hosted
    /// file shares stays (and leaves the cache's books), a pinned one
    /// stays, and the pass stops once the rest fits.
    #[tokio::test]
    async fn a_pass_evicts_the_oldest_unkept_files_until_they_fit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let old = cached(&store, "old", 1).await;
        let shared = cached(&store, "shared", 2).await;
        let pinned = cached(&store, "pinned", 3).await;
        let recent = cached(&store, "recent", 4).await;
        let hosted = NewFile {
            project: NormalizedName::new("mine").unwrap(),
            display_name: "mine".into(),
            filename: "mine-1.0.tar.gz".into(),
            version: "1.0".into(),
            sha256: shared,
            size: 100,
            upload_time: Timestamp::now(),
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
        };
        store.db().add_files("local", &[hosted]).await.unwrap();
        store.db().add_pins(&["pin*".to_owned()]).await.unwrap();
        let limit = CacheLimit { max_bytes: 200, pins: Vec::new(), interval: DEFAULT_INTERVAL };
        let eviction = Eviction::new(store.clone(), limit);

        let report = eviction.pass().await.unwrap();
        assert_eq!(report, PassReport { before: 400, evicted: 1, freed: 100 });
        assert!(!store.blobs().contains(&old).await, "the oldest file stays");
        for kept in [shared, pinned, recent] {
            assert!(store.blobs().contains(&kept).await, "{kept} was evicted");
        }
        assert_eq!(store.db().cached_total().await.unwrap().bytes, 200);
        assert_eq!(eviction.counts(), EvictionCounts { files: 1, bytes: 100, failures: 0, cached_bytes: 200 });

        // Under a cap of nothing, only what is kept stays: the pinned file
        // (pinned in the store) and the hosted one.
        let limit = CacheLimit { max_bytes: 0, pins: vec!["nothing-*".into()], interval: DEFAULT_INTERVAL };
        let report = Eviction::new(store.clone(), limit).pass().await.unwrap();
        assert_eq!(report, PassReport { before: 200, evicted: 1, freed: 100 });
        assert!(!store.blobs().contains(&recent).await);
        assert!(store.blobs().contains(&pinned).await && store.blobs().contains(&shared).await);
        assert_eq!(store.db().cached_total().await.unwrap().bytes, 100, "the pinned file is cached still");
    }
}
