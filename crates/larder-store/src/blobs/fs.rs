//! The filesystem backend: a blob lives at `<dir>/<aa>/<bb>/<hex>`.
//!
//! It is staged on the same filesystem, fsynced, then renamed into place
//! (and its directory fsynced). A reader therefore sees a blob whole or not
//! at all, whatever crashes, and two writers of the same content simply
//! race to rename identical bytes.

use std::io;
use std::path::{Path, PathBuf};

use larder_index::Sha256;

use crate::blobs::{BlobBackend, BlobError, BlobHandle, BlobInfo, BlobStat, StagedBlob, io_error};

/// Blobs as files in a local directory.
#[derive(Clone, Debug)]
pub struct FsBackend {
    dir: PathBuf,
}

impl FsBackend {
    /// Opens (creating when needed) the blob directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn path(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.to_hex();
        let mut path = PathBuf::with_capacity(self.dir.as_os_str().len() + 3 + 2 + 2 + hex.len());
        path.push(&self.dir);
        path.push(&hex[0..2]);
        path.push(&hex[2..4]);
        path.push(hex);
        path
    }
}

#[async_trait::async_trait]
impl BlobBackend for FsBackend {
    async fn stat(&self, sha256: &Sha256) -> Result<Option<BlobStat>, BlobError> {
        // Like opening, a look at a local file's inode does not block for
        // long: done in place (a mirror looks at each listed file; a hop
        // to the blocking pool cost more than the look).
        let path = self.path(sha256);
        match std::fs::metadata(&path) {
            Ok(metadata) => {
                let modified = metadata.modified().map_err(io_error(&path))?;
                Ok(Some(BlobStat { info: BlobInfo { sha256: *sha256, size: metadata.len() }, modified }))
            }
            Err(error) if absent(&error) => Ok(None),
            Err(error) => Err(BlobError::Io { path, source: error }),
        }
    }

    async fn open(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, BlobError> {
        // Opening a local file does not block for long: done in place, as
        // the warm file path is all about this one call.
        let path = self.path(sha256);
        match std::fs::File::open(&path).and_then(|file| BlobHandle::from_file(*sha256, file)) {
            Ok(handle) => Ok(Some(handle)),
            Err(error) if absent(&error) => Ok(None),
            Err(error) => Err(BlobError::Io { path, source: error }),
        }
    }

    async fn publish(&self, mut blob: StagedBlob) -> Result<(), BlobError> {
        blob.sync().await?;
        let target = self.path(&blob.info().sha256);
        tokio::task::spawn_blocking(move || blob.persist(&target)).await.expect("the publish task does not panic")
    }

    /// Two filesystem-wide syncs for the whole batch instead of two fsyncs
    /// per blob: the staged files' bytes, then the renames.
    async fn publish_batch(&self, blobs: Vec<StagedBlob>) -> Result<(), BlobError> {
        let mut pending = Vec::with_capacity(blobs.len());
        for mut blob in blobs {
            blob.flush().await?;
            pending.push((self.path(&blob.info().sha256), blob));
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            sync_filesystem(&dir)?;
            for (target, blob) in pending {
                blob.rename_to(&target)?;
            }
            sync_filesystem(&dir)
        })
        .await
        .expect("the publish task does not panic")
    }

    async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError> {
        let path = self.path(sha256);
        match tokio::fs::remove_file(&path).await {
            Err(e) if !absent(&e) => Err(BlobError::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    async fn list(&self) -> Result<Vec<BlobStat>, BlobError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || list(&dir)).await.expect("listing blobs does not panic")
    }

    async fn hard_link(&self, sha256: &Sha256, target: &Path) -> Result<bool, BlobError> {
        let dir = target.parent().expect("link targets have a parent");
        let source = self.path(sha256);
        let linked = tempfile::Builder::new()
            .prefix(".larder-tmp-")
            .make_in(dir, |temp| std::fs::hard_link(&source, temp))
            .and_then(|temp| temp.persist(target).map_err(|e| e.error));
        match linked {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(BlobError::Gone(*sha256)),
            Err(error) => {
                tracing::info!(%error, "cannot hard-link blobs to {}; copying them instead", dir.display());
                Ok(false)
            }
        }
    }
}

/// Flushes every written byte and every directory change of the
/// filesystem holding `dir` to disk (`syncfs`). The staging directory must
/// be on the same filesystem (it is, for a rename to publish).
fn sync_filesystem(dir: &Path) -> Result<(), BlobError> {
    let handle = std::fs::File::open(dir).map_err(io_error(dir))?;
    rustix::fs::syncfs(&handle).map_err(|e| BlobError::Io { path: dir.to_owned(), source: e.into() })
}

/// True when an error says the blob is not there (its file, or a
/// directory on its path, is missing or is not a directory).
fn absent(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn list(dir: &Path) -> Result<Vec<BlobStat>, BlobError> {
    let mut blobs = Vec::new();
    for first in read_dir(dir)? {
        for second in read_dir(&first)? {
            for blob in read_dir(&second)? {
                let Some(sha256) = blob.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let metadata = std::fs::metadata(&blob).map_err(io_error(&blob))?;
                let modified = metadata.modified().map_err(io_error(&blob))?;
                blobs.push(BlobStat { info: BlobInfo { sha256, size: metadata.len() }, modified });
            }
        }
    }
    Ok(blobs)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, BlobError> {
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    entries.map(|e| e.map(|e| e.path()).map_err(io_error(dir))).collect()
}
