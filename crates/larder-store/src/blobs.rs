//! Content-addressed blobs on the local filesystem.
//!
//! A blob lives at `blobs/sha256/<aa>/<bb>/<hex>`. It is written to a
//! temporary file under `tmp/` on the same filesystem, hashed while it is
//! written, checked against the expected digest, fsynced, and only then
//! renamed into place (and its directory fsynced). A reader therefore sees
//! a blob whole or not at all, whatever crashes, and two writers of the same
//! content simply race to rename identical bytes.
//!
//! Writing ends in two steps: [`BlobWriter::finish`] checks the digest (a
//! [`FinishedBlob`]: complete and verified, but neither durable nor
//! visible), [`FinishedBlob::publish`] makes it durable and visible.
//! [`BlobWriter::commit`] does both.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use larder_index::{Hasher, Sha256};

/// Why a blob could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Filesystem trouble.
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
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
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

/// The filesystem blob store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating when needed) the blob store under `root`.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        for dir in [&blobs, &tmp] {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        Ok(Self { blobs, tmp })
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.to_hex();
        self.blobs.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// True when the blob is stored.
    pub async fn contains(&self, sha256: &Sha256) -> bool {
        tokio::fs::try_exists(self.path(sha256)).await.unwrap_or(false)
    }

    /// Removes a blob (a corrupt one, or one nothing refers to). Removing
    /// one that is not there is not an error.
    pub async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError> {
        let path = self.path(sha256);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BlobError::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Every stored blob with its size and modification time (blocking:
    /// call from a blocking task). Files that are not named by a digest are
    /// skipped.
    pub fn list(&self) -> Result<Vec<(Sha256, u64, std::time::SystemTime)>, BlobError> {
        let mut blobs = Vec::new();
        for first in read_dir(&self.blobs)? {
            for second in read_dir(&first)? {
                for blob in read_dir(&second)? {
                    let Some(digest) = blob.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) else {
                        continue;
                    };
                    let metadata = std::fs::metadata(&blob).map_err(io_error(&blob))?;
                    blobs.push((digest, metadata.len(), metadata.modified().map_err(io_error(&blob))?));
                }
            }
        }
        Ok(blobs)
    }

    /// Temporary files (left by a crash or a kill) older than `age`; they
    /// are never renamed into place any more (blocking).
    pub fn stale_temp_files(&self, age: std::time::Duration) -> Result<Vec<PathBuf>, BlobError> {
        let now = std::time::SystemTime::now();
        Ok(read_dir(&self.tmp)?
            .into_iter()
            .filter(|path| {
                std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|elapsed| elapsed > age))
            })
            .collect())
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let temp = tempfile::Builder::new().prefix("blob-").tempfile_in(&self.tmp).map_err(io_error(&self.tmp))?;
        let (file, temp_path) = temp.into_parts();
        Ok(BlobWriter {
            store: self.clone(),
            file: tokio::fs::File::from_std(file),
            temp_path,
            hasher: Hasher::default(),
            size: 0,
        })
    }

    /// Stores `bytes`, returning their digest; with `expected`, only if
    /// they have that digest.
    pub async fn put_bytes(&self, bytes: &[u8], expected: Option<Sha256>) -> Result<BlobInfo, BlobError> {
        let mut writer = self.writer()?;
        writer.write(bytes).await?;
        writer.commit(expected).await
    }

    /// The size of the stored blob, or `None` when it is not stored.
    pub async fn size(&self, sha256: &Sha256) -> Option<u64> {
        tokio::fs::metadata(self.path(sha256)).await.ok().map(|m| m.len())
    }

    /// Stores a copy of the file at `path`, streaming and hashing it.
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
}

/// A blob being written. Dropping it before [`BlobWriter::finish`] or
/// [`BlobWriter::commit`] deletes the temporary file, so an aborted
/// download leaves nothing behind.
pub struct BlobWriter {
    store: BlobStore,
    file: tokio::fs::File,
    temp_path: tempfile::TempPath,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter {
    /// Appends bytes. When this returns they are in the file, so a reader
    /// of [`BlobWriter::path`] sees them (the proxy streams a download to
    /// its clients that way while it is still being written).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.file.write_all(bytes).await.map_err(io_error(&self.temp_path))?;
        self.file.flush().await.map_err(io_error(&self.temp_path))
    }

    /// The temporary file being written.
    pub fn path(&self) -> &Path {
        &self.temp_path
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends writing and checks the content against `expected` (when given).
    /// On a mismatch the temporary file is deleted. Nothing is published
    /// yet: that is [`FinishedBlob::publish`].
    pub fn finish(self, expected: Option<Sha256>) -> Result<FinishedBlob, BlobError> {
        let sha256 = self.hasher.finish();
        if let Some(expected) = expected
            && expected != sha256
        {
            return Err(BlobError::HashMismatch { expected, actual: sha256 });
        }
        Ok(FinishedBlob {
            store: self.store,
            file: self.file,
            temp_path: self.temp_path,
            info: BlobInfo { sha256, size: self.size },
        })
    }

    /// Finishes the blob and publishes it: [`BlobWriter::finish`], then
    /// [`FinishedBlob::publish`]. On a mismatch nothing is published.
    pub async fn commit(self, expected: Option<Sha256>) -> Result<BlobInfo, BlobError> {
        self.finish(expected)?.publish().await
    }
}

/// A blob whose content is complete and has its digest checked, still in
/// its temporary file: not durable, not visible under its digest. Its bytes
/// no longer change, so readers of the temporary file may take them as
/// final. Dropping it deletes the temporary file (a crash leaves it to
/// [`BlobStore::stale_temp_files`]).
pub struct FinishedBlob {
    store: BlobStore,
    file: tokio::fs::File,
    temp_path: tempfile::TempPath,
    info: BlobInfo,
}

impl FinishedBlob {
    /// Its digest and size.
    pub fn info(&self) -> BlobInfo {
        self.info
    }

    /// The temporary file holding it (final content, readable).
    pub fn path(&self) -> &Path {
        &self.temp_path
    }

    /// Makes the blob durable (fsync) and publishes it under its digest
    /// (rename, then fsync of the directory).
    pub async fn publish(mut self) -> Result<BlobInfo, BlobError> {
        self.file.flush().await.map_err(io_error(&self.temp_path))?;
        self.file.sync_all().await.map_err(io_error(&self.temp_path))?;
        drop(self.file);
        let target = self.store.path(&self.info.sha256);
        let temp_path = self.temp_path;
        tokio::task::spawn_blocking(move || publish(temp_path, &target))
            .await
            .expect("the publish task does not panic")?;
        Ok(self.info)
    }
}

/// Makes a batch of finished blobs durable and publishes them, for bulk
/// jobs: the same guarantees as [`FinishedBlob::publish`] one by one (no
/// blob is renamed into place before its bytes are on disk, and every
/// rename is on disk when this returns), for two filesystem-wide syncs
/// instead of two fsyncs per blob. On an error, blobs already renamed stay
/// published (they are whole and verified) and the rest are discarded.
pub async fn publish_batch(blobs: Vec<FinishedBlob>) -> Result<Vec<BlobInfo>, BlobError> {
    let Some(first) = blobs.first() else { return Ok(Vec::new()) };
    let tmp = first.store.tmp.clone();
    let mut pending = Vec::with_capacity(blobs.len());
    for mut blob in blobs {
        blob.file.flush().await.map_err(io_error(&blob.temp_path))?;
        pending.push((blob.store.path(&blob.info.sha256), blob.temp_path, blob.info));
    }
    tokio::task::spawn_blocking(move || {
        sync_filesystem(&tmp)?;
        let mut published = Vec::with_capacity(pending.len());
        for (target, temp_path, info) in pending {
            rename_into_place(temp_path, &target)?;
            published.push(info);
        }
        sync_filesystem(&tmp)?;
        Ok(published)
    })
    .await
    .expect("the publish task does not panic")
}

/// Flushes every written byte and every directory change of the
/// filesystem holding `dir` to disk (`syncfs`).
fn sync_filesystem(dir: &Path) -> Result<(), BlobError> {
    let handle = std::fs::File::open(dir).map_err(io_error(dir))?;
    rustix::fs::syncfs(&handle).map_err(|e| BlobError::Io { path: dir.to_owned(), source: e.into() })
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, BlobError> {
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    entries.map(|e| e.map(|e| e.path()).map_err(io_error(dir))).collect()
}

/// Renames the finished temporary file into place and makes the rename
/// durable (the file itself already is). An existing blob with the same digest has the same bytes, so
/// replacing it is harmless.
fn publish(temp_path: tempfile::TempPath, target: &Path) -> Result<(), BlobError> {
    rename_into_place(temp_path, target)?;
    let dir = target.parent().expect("blob paths have a parent");
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

/// Renames a finished temporary file into place, readable by all.
fn rename_into_place(temp_path: tempfile::TempPath, target: &Path) -> Result<(), BlobError> {
    // Readable by all, like any file a package index serves, so a static
    // export can hard-link blobs for a web server running as another user;
    // the data directory's own permissions keep private packages private.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&temp_path, std::fs::Permissions::from_mode(0o644)).map_err(io_error(&temp_path))?;
    let dir = target.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    temp_path.persist(target).map_err(|e| BlobError::Io { path: target.to_owned(), source: e.error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_digest_and_leaves_no_temp_files() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let info = store.put_bytes(b"hello", None).await.unwrap();
        assert_eq!(info, BlobInfo { sha256: Sha256::of(b"hello"), size: 5 });
        assert_eq!(std::fs::read(store.path(&info.sha256)).unwrap(), b"hello");
        assert!(store.contains(&info.sha256).await);
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_mismatching_blob_is_never_published() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let mut writer = store.writer().unwrap();
        writer.write(b"truncated").await.unwrap();
        let expected = Sha256::of(b"truncated body");
        let err = writer.commit(Some(expected)).await.unwrap_err();
        assert!(matches!(err, BlobError::HashMismatch { .. }));
        assert!(!store.contains(&expected).await);
        assert!(!store.contains(&Sha256::of(b"truncated")).await);
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_finished_blob_is_visible_only_once_published() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let digest = Sha256::of(b"hello");
        for publish in [false, true] {
            let mut writer = store.writer().unwrap();
            writer.write(b"hello").await.unwrap();
            let temp = writer.path().to_owned();
            let finished = writer.finish(Some(digest)).unwrap();
            assert_eq!(finished.info(), BlobInfo { sha256: digest, size: 5 });
            assert_eq!(std::fs::read(&temp).unwrap(), b"hello");
            assert!(!store.contains(&digest).await);
            if publish {
                assert_eq!(finished.publish().await.unwrap().sha256, digest);
            } else {
                drop(finished);
            }
            assert_eq!(store.contains(&digest).await, publish);
            assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
        }
    }

    #[tokio::test]
    async fn a_batch_is_published_whole_and_leaves_no_temp_files() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let mut batch = Vec::new();
        for content in [&b"one"[..], b"two", b"three"] {
            let mut writer = store.writer().unwrap();
            writer.write(content).await.unwrap();
            batch.push(writer.finish(Some(Sha256::of(content))).unwrap());
        }
        assert!(!store.contains(&Sha256::of(b"one")).await);
        let published = publish_batch(batch).await.unwrap();
        assert_eq!(published.iter().map(|b| b.size).collect::<Vec<_>>(), [3, 3, 5]);
        for content in [&b"one"[..], b"two", b"three"] {
            assert_eq!(std::fs::read(store.path(&Sha256::of(content))).unwrap(), content);
        }
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
        assert!(publish_batch(Vec::new()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_writer_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let mut writer = store.writer().unwrap();
        writer.write(b"partial").await.unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }
}
