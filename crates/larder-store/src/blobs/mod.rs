//! Content-addressed blobs, named by their sha256, behind one small trait.
//!
//! [`Blobs`] is what the rest of larder holds: a cheap handle over a
//! [`BlobBackend`] (the filesystem, an S3-compatible object store, that
//! store with a local disk cache in front: [`CachedBackend`]) and a
//! local staging directory where new blobs are written, hashed and checked
//! before the backend publishes them. Nothing outside this crate ever sees
//! where a blob lives: reads hand out a [`BlobHandle`] (streamable and
//! rangeable; on the filesystem, an open file that the server can send
//! with `sendfile`), writes go through a [`BlobWriter`].
//!
//! Writing ends in two steps so bulk jobs can group durability:
//! [`BlobWriter::finish`] checks the digest (a [`FinishedBlob`]: complete
//! and verified, neither durable nor visible), [`FinishedBlob::publish`]
//! hands it to the backend, which makes it durable and visible under its
//! digest. [`BlobWriter::commit`] does both. Nothing unverified is ever
//! published, whatever the backend.

mod cache;
mod config;
mod fs;
mod handle;
mod s3;
mod write;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use larder_index::Sha256;

pub use cache::CachedBackend;
pub use config::{BlobLocation, BlobsConfig};
pub use fs::FsBackend;
pub use handle::{BlobHandle, ByteStream, RemoteBlob};
pub use s3::{S3Blobs, S3Error, S3Location, S3LocationError, S3Settings, SecretKey};
pub use write::{BlobWriter, FinishedBlob, StagedBlob, publish_batch};

/// Why a blob could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Filesystem trouble (the blob store's own files or staging area).
    #[error("blob store I/O error at {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: io::Error,
    },
    /// The bytes written do not hash to what the caller expected.
    #[error("content hash mismatch: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        /// The digest the caller said the content has.
        expected: Sha256,
        /// The digest of what was actually written.
        actual: Sha256,
    },
    /// A remote backend (object store) could not answer: unreachable,
    /// refusing, or failing ([`BlobError::is_unavailable`]).
    #[error("blob store {store}: {source}")]
    Backend {
        /// Which store (`s3://BUCKET/PREFIX`; never with credentials).
        store: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A blob that was there went away while it was read.
    #[error("blob {0} is no longer stored")]
    Gone(Sha256),
}

impl BlobError {
    /// True when the blob store could not answer (a remote backend down or
    /// refusing): a request may succeed later, and what is held elsewhere
    /// (pages, a local cache) can still be served.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BlobError::Backend { .. })
    }
}

/// Maps an I/O error to [`BlobError::Io`] at `path`.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io { path: path.to_owned(), source }
}

/// A stored blob: its digest and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// The SHA-256 of the content.
    pub sha256: Sha256,
    /// The size in bytes.
    pub size: u64,
}

/// What a backend knows of a stored blob ([`BlobBackend::stat`],
/// [`BlobBackend::list`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobStat {
    /// Digest and size.
    pub info: BlobInfo,
    /// When it was published (garbage collection spares young blobs, whose
    /// database row may not be written yet).
    pub modified: SystemTime,
}

/// Where blobs are kept. Implementations live in this crate (the
/// filesystem, [`FsBackend`]; an S3-compatible object store); the rest of
/// larder only sees [`Blobs`].
///
/// Contract, for every implementation:
/// - Blobs are immutable and named by the sha256 of their content: a name
///   either is absent or has exactly those bytes. Publishing a blob that
///   exists already is harmless (same bytes).
/// - [`BlobBackend::publish`] receives a [`StagedBlob`]: a local file whose
///   digest has been checked. When it returns `Ok`, the blob is durable
///   (survives a crash of this machine) and visible to every reader of the
///   backend, in this process and in others. On error nothing is visible.
/// - [`BlobBackend::open`] and [`BlobBackend::stat`] answer `Ok(None)` for
///   an absent blob; errors are for a backend that cannot answer.
/// - Removing an absent blob is not an error.
/// - Methods may be called concurrently from many tasks and processes.
#[async_trait::async_trait]
pub trait BlobBackend: fmt::Debug + Send + Sync + 'static {
    /// Size and publication time of a stored blob, `None` when it is not
    /// stored.
    async fn stat(&self, sha256: &Sha256) -> Result<Option<BlobStat>, BlobError>;

    /// Opens a stored blob for reading, `None` when it is not stored.
    async fn open(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, BlobError>;

    /// Makes a verified staged blob durable and visible under its digest.
    async fn publish(&self, blob: StagedBlob) -> Result<(), BlobError>;

    /// Publishes a batch of verified staged blobs, with the guarantees of
    /// [`BlobBackend::publish`] for each (none visible before it is
    /// durable, all durable when this returns), for bulk jobs that can
    /// group durability. On an error, blobs already published stay
    /// published (they are whole and verified) and the rest are discarded.
    /// The default publishes them one by one.
    async fn publish_batch(&self, blobs: Vec<StagedBlob>) -> Result<(), BlobError> {
        for blob in blobs {
            self.publish(blob).await?;
        }
        Ok(())
    }

    /// Removes a blob (a corrupt one, or one nothing refers to).
    async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError>;

    /// Every stored blob. Entries not named by a digest are skipped.
    async fn list(&self) -> Result<Vec<BlobStat>, BlobError>;

    /// Puts the blob at `target` as a hard link when the backend can (a
    /// static export on the same filesystem); `Ok(false)` when it cannot,
    /// and the caller copies instead. The default cannot.
    async fn hard_link(&self, sha256: &Sha256, target: &Path) -> Result<bool, BlobError> {
        let _ = (sha256, target);
        Ok(false)
    }
}

/// The blob store as larder uses it: a backend and a local staging area.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Blobs {
    backend: Arc<dyn BlobBackend>,
    staging: Arc<Path>,
}

impl Blobs {
    /// Blobs on the local filesystem under `root` (`root/blobs/sha256/..`,
    /// staged in `root/tmp`), creating the directories when needed.
    pub fn filesystem(root: &Path) -> Result<Self, BlobError> {
        let backend = FsBackend::open(&root.join("blobs").join("sha256"))?;
        Self::new(Arc::new(backend), &root.join("tmp"))
    }

    /// Blobs in `backend`, staged in the local directory `staging` (created
    /// when needed). The staging directory should be on the filesystem of
    /// a filesystem backend, so that publishing is a rename.
    pub fn new(backend: Arc<dyn BlobBackend>, staging: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(staging).map_err(io_error(staging))?;
        Ok(Self { backend, staging: staging.into() })
    }

    /// Opens a stored blob, `None` when it is not stored.
    pub async fn open(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, BlobError> {
        self.backend.open(sha256).await
    }

    /// The size of a stored blob, `None` when it is not stored.
    pub async fn size(&self, sha256: &Sha256) -> Result<Option<u64>, BlobError> {
        Ok(self.backend.stat(sha256).await?.map(|stat| stat.info.size))
    }

    /// Size and publication time of a stored blob, `None` when it is not
    /// stored.
    pub async fn stat(&self, sha256: &Sha256) -> Result<Option<BlobStat>, BlobError> {
        self.backend.stat(sha256).await
    }

    /// True when the blob is stored (a backend that cannot answer counts as
    /// not having it).
    pub async fn contains(&self, sha256: &Sha256) -> bool {
        matches!(self.backend.stat(sha256).await, Ok(Some(_)))
    }

    /// The whole content of a small blob (core metadata), `None` when it is
    /// not stored.
    pub async fn read(&self, sha256: &Sha256) -> Result<Option<Vec<u8>>, BlobError> {
        match self.open(sha256).await? {
            Some(handle) => handle.read_all().await.map(Some),
            None => Ok(None),
        }
    }

    /// Removes a blob. Removing one that is not there is not an error.
    pub async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError> {
        self.backend.remove(sha256).await
    }

    /// Every stored blob.
    pub async fn list(&self) -> Result<Vec<BlobStat>, BlobError> {
        self.backend.list().await
    }

    /// See [`BlobBackend::hard_link`].
    pub async fn hard_link(&self, sha256: &Sha256, target: &Path) -> Result<bool, BlobError> {
        self.backend.hard_link(sha256, target).await
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        BlobWriter::new(self.clone())
    }

    /// Stages `bytes` (a small download held whole in memory) as a finished
    /// blob in one blocking step, checked against `expected` first; see
    /// [`FinishedBlob`]. Blocking: call from a blocking task.
    pub fn stage_bytes(&self, bytes: &[u8], expected: Option<Sha256>) -> Result<FinishedBlob, BlobError> {
        FinishedBlob::stage(self.clone(), bytes, expected)
    }

    /// Stores `bytes`, returning their digest; with `expected`, only if
    /// they have that digest.
    pub async fn put_bytes(&self, bytes: &[u8], expected: Option<Sha256>) -> Result<BlobInfo, BlobError> {
        let mut writer = self.writer()?;
        writer.write(bytes).await?;
        writer.commit(expected).await
    }

    /// Stores a copy of the local file at `path`, streaming and hashing it.
    pub async fn put_file(&self, path: &Path, expected: Option<Sha256>) -> Result<BlobInfo, BlobError> {
        use tokio::io::AsyncReadExt;
        let mut source = tokio::fs::File::open(path).await.map_err(io_error(path))?;
        let mut writer = self.writer()?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = source.read(&mut buffer).await.map_err(io_error(path))?;
            if read == 0 {
                break;
            }
            writer.write(&buffer[..read]).await?;
        }
        writer.commit(expected).await
    }

    /// Removes staged files (left by a crash or a kill) older than `age`;
    /// they are never published any more. Returns how many there were
    /// (`dry_run`: counts them only). Blocking: call from a blocking task.
    pub fn remove_stale_staged(&self, age: Duration, dry_run: bool) -> Result<u64, BlobError> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.staging).map_err(io_error(&self.staging))? {
            let path = entry.map_err(io_error(&self.staging))?.path();
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|elapsed| elapsed > age));
            if old {
                if !dry_run {
                    let _ = std::fs::remove_file(&path);
                }
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Bytes free on the file system of the staging directory, what an
    /// unprivileged writer may still use.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let stat = rustix::fs::statvfs(&*self.staging)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    fn staging(&self) -> &Path {
        &self.staging
    }

    fn backend(&self) -> &dyn BlobBackend {
        &*self.backend
    }
}
