//! A local disk cache in front of a remote backend ([`CachedBackend`]), so
//! hot blobs are served from local files (with `sendfile`) instead of
//! being streamed from the object store at every request.
//!
//! - A blob read from the remote backend is copied into the cache in the
//!   background (the request itself is streamed from the remote); a blob
//!   published through this process is linked into the cache as well.
//! - A blob is in the cache whole and verified, or not at all: it is
//!   written to a temporary file, its digest checked, fsynced, then renamed
//!   to its name (`<dir>/sha256/aa/bb/<hex>`). Temporary files left by a
//!   crash are removed at start-up and never read.
//! - The cache holds at most its capacity in bytes: beyond it, the least
//!   recently used blobs are deleted (a blob being sent keeps its open
//!   file). Recency lives in memory; at start-up the files' modification
//!   times seed it.
//!
//! Several processes may share a cache directory: each keeps its own
//! accounting, a blob another one evicted is simply read remotely again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use larder_index::{Hasher, Sha256};
use tokio::io::AsyncWriteExt;

use crate::blobs::{BlobBackend, BlobError, BlobHandle, BlobInfo, BlobStat, StagedBlob, io_error};

/// Temporary files older than this are left by a crash (a fill takes
/// seconds); younger ones may belong to another process filling now.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A remote backend with a size-capped local disk cache in front of it.
#[derive(Debug)]
pub struct CachedBackend {
    remote: Arc<dyn BlobBackend>,
    cache: Arc<DiskCache>,
}

#[derive(Debug)]
struct DiskCache {
    /// `<dir>/sha256`.
    blobs: PathBuf,
    /// `<dir>/tmp`.
    temp: PathBuf,
    capacity: u64,
    recency: Mutex<Recency>,
    /// Blobs being copied in now.
    filling: Mutex<HashSet<Sha256>>,
}

/// Which cached blobs were used least recently, and their total size.
#[derive(Debug, Default)]
struct Recency {
    entries: HashMap<Sha256, (u64, u64)>,
    by_use: BTreeMap<u64, Sha256>,
    total: u64,
    clock: u64,
}

impl Recency {
    /// Records a use of a blob of `size` bytes (adding it when new).
    fn touch(&mut self, sha256: Sha256, size: u64) {
        self.clock += 1;
        match self.entries.insert(sha256, (size, self.clock)) {
            Some((_, used)) => {
                self.by_use.remove(&used);
            }
            None => self.total += size,
        }
        self.by_use.insert(self.clock, sha256);
    }

    fn forget(&mut self, sha256: &Sha256) {
        if let Some((size, used)) = self.entries.remove(sha256) {
            self.by_use.remove(&used);
            self.total -= size;
        }
    }

    /// Takes least recently used blobs out until the total fits `capacity`.
    fn evict(&mut self, capacity: u64) -> Vec<Sha256> {
        let mut evicted = Vec::new();
        while self.total > capacity {
            let Some((_, sha256)) = self.by_use.pop_first() else { break };
            let (size, _) = self.entries.remove(&sha256).expect("entries and by_use agree");
            self.total -= size;
            evicted.push(sha256);
        }
        evicted
    }
}

impl CachedBackend {
    /// `remote` with a cache of at most `capacity` bytes in the local
    /// directory `dir` (created when needed; what it holds is kept).
    pub fn open(remote: Arc<dyn BlobBackend>, dir: &Path, capacity: u64) -> Result<Self, BlobError> {
        let (blobs, temp) = (dir.join("sha256"), dir.join("tmp"));
        for dir in [&blobs, &temp] {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        remove_stale_temp(&temp)?;
        let mut found = scan(&blobs)?;
        found.sort_by_key(|(_, _, modified)| *modified);
        let mut recency = Recency::default();
        for (sha256, size, _) in found {
            recency.touch(sha256, size);
        }
        let cache =
            DiskCache { blobs, temp, capacity, recency: Mutex::new(recency), filling: Mutex::new(HashSet::new()) };
        cache.evict();
        Ok(Self { remote, cache: Arc::new(cache) })
    }
}

impl DiskCache {
    fn path(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.to_hex();
        self.blobs.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// The cached blob, opened and marked used; `None` when not cached.
    fn open(&self, sha256: &Sha256) -> Option<BlobHandle> {
        let size = self.recency.lock().unwrap().entries.get(sha256).map(|(size, _)| *size)?;
        match std::fs::File::open(self.path(sha256)).and_then(|file| BlobHandle::from_file(*sha256, file)) {
            Ok(handle) => {
                self.recency.lock().unwrap().touch(*sha256, size);
                Some(handle)
            }
            Err(_) => {
                // Evicted by another process sharing the cache.
                self.recency.lock().unwrap().forget(sha256);
                None
            }
        }
    }

    /// Deletes least recently used blobs until the cache fits.
    fn evict(&self) {
        let evicted = self.recency.lock().unwrap().evict(self.capacity);
        for sha256 in evicted {
            let _ = std::fs::remove_file(self.path(&sha256));
        }
    }

    fn remove(&self, sha256: &Sha256) {
        self.recency.lock().unwrap().forget(sha256);
        let _ = std::fs::remove_file(self.path(sha256));
    }

    /// Moves a complete, verified and fsynced temporary file into place.
    fn insert(&self, temp: tempfile::TempPath, info: BlobInfo) -> io::Result<()> {
        let target = self.path(&info.sha256);
        std::fs::create_dir_all(target.parent().expect("cache paths have a parent"))?;
        temp.persist(&target).map_err(|e| e.error)?;
        self.recency.lock().unwrap().touch(info.sha256, info.size);
        self.evict();
        Ok(())
    }

    /// Starts copying a remote blob in, unless it is too large for the
    /// cache, being copied already or copied meanwhile (a copy is recorded
    /// before it stops being in progress, so one of the two is seen).
    fn fill(self: &Arc<Self>, remote: Arc<dyn BlobBackend>, info: BlobInfo) {
        if info.size > self.capacity {
            return;
        }
        {
            let mut filling = self.filling.lock().unwrap();
            if self.recency.lock().unwrap().entries.contains_key(&info.sha256) || !filling.insert(info.sha256) {
                return;
            }
        }
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = cache.copy_in(&*remote, info).await {
                tracing::info!(%error, sha256 = %info.sha256, "blob not copied into the local cache");
            }
            cache.filling.lock().unwrap().remove(&info.sha256);
        });
    }

    async fn copy_in(&self, remote: &dyn BlobBackend, info: BlobInfo) -> Result<(), BlobError> {
        let handle = remote.open(&info.sha256).await?.ok_or(BlobError::Gone(info.sha256))?;
        let temp = tempfile::Builder::new().prefix("fill-").tempfile_in(&self.temp).map_err(io_error(&self.temp))?;
        let (file, temp) = temp.into_parts();
        let io = io_error(&temp);
        let mut file = tokio::fs::File::from_std(file);
        let mut stream = handle.stream(0..info.size).await?;
        let (mut hasher, mut size) = (Hasher::default(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(io_error(&temp))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io_error(&temp))?;
        }
        let actual = hasher.finish();
        if actual != info.sha256 || size != info.size {
            return Err(BlobError::HashMismatch { expected: info.sha256, actual });
        }
        file.sync_all().await.map_err(io)?;
        drop(file);
        let temp_path = temp.to_path_buf();
        self.insert(temp, info).map_err(io_error(&temp_path))
    }
}

#[async_trait::async_trait]
impl BlobBackend for CachedBackend {
    async fn stat(&self, sha256: &Sha256) -> Result<Option<BlobStat>, BlobError> {
        if let Some(handle) = self.cache.open(sha256)
            && let Some(Ok(modified)) = handle.local_file().map(|f| f.metadata().and_then(|m| m.modified()))
        {
            return Ok(Some(BlobStat { info: handle.info(), modified }));
        }
        self.remote.stat(sha256).await
    }

    /// From the cache when there; else from the remote backend, copying the
    /// blob into the cache meanwhile.
    async fn open(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, BlobError> {
        if let Some(handle) = self.cache.open(sha256) {
            return Ok(Some(handle));
        }
        let handle = self.remote.open(sha256).await?;
        if let Some(handle) = &handle {
            self.cache.fill(Arc::clone(&self.remote), handle.info());
        }
        Ok(handle)
    }

    /// Published remotely; the staged file (verified) also goes into the
    /// cache, as a link when the cache is on the staging file system.
    async fn publish(&self, blob: StagedBlob) -> Result<(), BlobError> {
        let info = blob.info();
        let linked = (info.size <= self.cache.capacity).then(|| self.link_staged(&blob)).flatten();
        self.remote.publish(blob).await?;
        if let Some(temp) = linked {
            let cache = Arc::clone(&self.cache);
            let inserted = tokio::task::spawn_blocking(move || {
                std::fs::File::open(&temp).and_then(|file| file.sync_all())?;
                cache.insert(temp, info)
            });
            if let Ok(Err(error)) = inserted.await {
                tracing::info!(%error, sha256 = %info.sha256, "published blob not copied into the local cache");
            }
        }
        Ok(())
    }

    /// Bulk jobs do not fill the cache.
    async fn publish_batch(&self, blobs: Vec<StagedBlob>) -> Result<(), BlobError> {
        self.remote.publish_batch(blobs).await
    }

    async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError> {
        self.remote.remove(sha256).await?;
        self.cache.remove(sha256);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<BlobStat>, BlobError> {
        self.remote.list().await
    }
}

impl CachedBackend {
    /// A second name for the staged file in the cache's temporary
    /// directory, `None` when it cannot have one (another file system).
    fn link_staged(&self, blob: &StagedBlob) -> Option<tempfile::TempPath> {
        let temp = tempfile::Builder::new()
            .prefix("published-")
            .make_in(&self.cache.temp, |path| std::fs::hard_link(blob.path(), path))
            .ok()?;
        Some(temp.into_temp_path())
    }
}

/// Removes temporary files a crash left in `dir`.
fn remove_stale_temp(dir: &Path) -> Result<(), BlobError> {
    let now = SystemTime::now();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let stale = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|age| age > STALE_TEMP));
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

/// The cached blobs under `dir` (`aa/bb/<hex>`), with size and
/// modification time; anything else is skipped.
fn scan(dir: &Path) -> Result<Vec<(Sha256, u64, SystemTime)>, BlobError> {
    let mut found = Vec::new();
    for first in std::fs::read_dir(dir).map_err(io_error(dir))?.flatten() {
        for second in std::fs::read_dir(first.path()).into_iter().flatten().flatten() {
            for blob in std::fs::read_dir(second.path()).into_iter().flatten().flatten() {
                let Some(sha256) = blob.file_name().to_str().and_then(|name| name.parse().ok()) else { continue };
                if let Ok(metadata) = blob.metadata() {
                    found.push((sha256, metadata.len(), metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_until_the_total_fits() {
        let mut recency = Recency::default();
        let [a, b, c] = [b"a", b"b", b"c"].map(|content| Sha256::of(content));
        recency.touch(a, 100);
        recency.touch(b, 100);
        recency.touch(a, 100);
        recency.touch(c, 100);
        assert_eq!(recency.total, 300);
        assert_eq!(recency.evict(250), [b]);
        assert_eq!(recency.evict(100), [a]);
        assert_eq!(recency.total, 100);
        recency.forget(&c);
        assert_eq!((recency.total, recency.entries.len(), recency.by_use.len()), (0, 0, 0));
    }
}
