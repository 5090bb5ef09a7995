//! Writing a new blob: staged locally, hashed while written, checked,
//! then handed to the backend ([`crate::blobs::BlobBackend::publish`]).

use std::path::Path;

use larder_index::{Hasher, Sha256};
use tokio::io::AsyncWriteExt;

use crate::blobs::{BlobError, BlobInfo, Blobs, io_error};

/// A blob being written. Dropping it before [`BlobWriter::finish`] or
/// [`BlobWriter::commit`] deletes the temporary file, so an aborted
/// download leaves nothing behind.
pub struct BlobWriter {
    blobs: Blobs,
    file: tokio::fs::File,
    temp_path: tempfile::TempPath,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter {
    /// Starts staging a new blob in the staging directory of `blobs`.
    pub(crate) fn new(blobs: Blobs) -> Result<Self, BlobError> {
        let (file, temp_path) = create_staged(blobs.staging())?;
        Ok(Self { blobs, file: tokio::fs::File::from_std(file), temp_path, hasher: Hasher::default(), size: 0 })
    }

    /// Appends bytes. When this returns they are in the staged file, so a
    /// [`BlobWriter::reader`] sees them (the proxy streams a download to
    /// its clients that way while it is still being written).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.file.write_all(bytes).await.map_err(io_error(&self.temp_path))?;
        self.file.flush().await.map_err(io_error(&self.temp_path))
    }

    /// A new read-only handle on the staged file. It stays valid after the
    /// blob is published or dropped, and then holds the final bytes (or,
    /// after a mismatch, whatever was written).
    pub fn reader(&self) -> Result<std::fs::File, BlobError> {
        std::fs::File::open(&self.temp_path).map_err(io_error(&self.temp_path))
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
        check_digest(expected, sha256)?;
        let staged =
            StagedBlob { file: self.file, temp_path: self.temp_path, info: BlobInfo { sha256, size: self.size } };
        Ok(FinishedBlob { blobs: self.blobs, staged })
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
/// [`Blobs::remove_stale_staged`]).
pub struct FinishedBlob {
    blobs: Blobs,
    staged: StagedBlob,
}

impl FinishedBlob {
    /// Stages `bytes`, held whole in memory, in one go: checked against
    /// `expected` first (on a mismatch nothing is written), then written
    /// to a new staging file. Blocking: call from a blocking task.
    pub(crate) fn stage(blobs: Blobs, bytes: &[u8], expected: Option<Sha256>) -> Result<Self, BlobError> {
        let sha256 = Sha256::of(bytes);
        check_digest(expected, sha256)?;
        let (mut file, temp_path) = create_staged(blobs.staging())?;
        std::io::Write::write_all(&mut file, bytes).map_err(io_error(&temp_path))?;
        let info = BlobInfo { sha256, size: bytes.len() as u64 };
        let staged = StagedBlob { file: tokio::fs::File::from_std(file), temp_path, info };
        Ok(Self { blobs, staged })
    }

    /// Its digest and size.
    pub fn info(&self) -> BlobInfo {
        self.staged.info
    }

    /// A new read-only handle on the blob's bytes (valid whether or not it
    /// is published later).
    pub fn reader(&self) -> Result<std::fs::File, BlobError> {
        self.staged.reader()
    }

    /// Makes the blob durable and publishes it under its digest (the
    /// backend's [`crate::blobs::BlobBackend::publish`]).
    pub async fn publish(self) -> Result<BlobInfo, BlobError> {
        let info = self.staged.info;
        self.blobs.backend().publish(self.staged).await?;
        Ok(info)
    }
}

/// Makes a batch of finished blobs durable and publishes them
/// ([`crate::blobs::BlobBackend::publish_batch`]), for bulk jobs. The blobs
/// must all come from one [`Blobs`]. Returns their digests and sizes.
pub async fn publish_batch(blobs: Vec<FinishedBlob>) -> Result<Vec<BlobInfo>, BlobError> {
    let Some(first) = blobs.first() else { return Ok(Vec::new()) };
    let store = first.blobs.clone();
    let infos = blobs.iter().map(FinishedBlob::info).collect();
    store.backend().publish_batch(blobs.into_iter().map(|blob| blob.staged).collect()).await?;
    Ok(infos)
}

/// Refuses content whose digest `actual` is not the `expected` one (when
/// the caller expects one): nothing unverified is ever staged as finished.
fn check_digest(expected: Option<Sha256>, actual: Sha256) -> Result<(), BlobError> {
    match expected {
        Some(expected) if expected != actual => Err(BlobError::HashMismatch { expected, actual }),
        _ => Ok(()),
    }
}

/// Creates a new staging file in `staging`, readable by all (see
/// [`StagedBlob::rename_to`]; set on the open file, whatever the umask).
fn create_staged(staging: &Path) -> Result<(std::fs::File, tempfile::TempPath), BlobError> {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new().prefix("blob-").tempfile_in(staging).map_err(io_error(staging))?;
    let (file, temp_path) = temp.into_parts();
    file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_error(&temp_path))?;
    Ok((file, temp_path))
}

/// A verified blob in its local staging file, as a backend receives it to
/// publish. Dropping it deletes the staging file.
#[derive(Debug)]
pub struct StagedBlob {
    file: tokio::fs::File,
    temp_path: tempfile::TempPath,
    info: BlobInfo,
}

impl StagedBlob {
    /// Its digest and size.
    pub fn info(&self) -> BlobInfo {
        self.info
    }

    /// The staged file, for a backend that uploads it.
    pub fn file(&mut self) -> &mut tokio::fs::File {
        &mut self.file
    }

    /// Where the staged file is, for a backend that uploads or copies it.
    pub(crate) fn path(&self) -> &Path {
        &self.temp_path
    }

    /// A new read-only handle on the staged file, from its start.
    pub fn reader(&self) -> Result<std::fs::File, BlobError> {
        std::fs::File::open(&self.temp_path).map_err(io_error(&self.temp_path))
    }

    /// Flushes the staged file to stable storage (fsync).
    pub async fn sync(&mut self) -> Result<(), BlobError> {
        self.file.flush().await.map_err(io_error(&self.temp_path))?;
        self.file.sync_all().await.map_err(io_error(&self.temp_path))
    }

    /// Flushes what was written to the staged file to the OS (not to
    /// stable storage: that is [`StagedBlob::sync`], or a filesystem-wide
    /// sync for a batch).
    pub async fn flush(&mut self) -> Result<(), BlobError> {
        self.file.flush().await.map_err(io_error(&self.temp_path))
    }

    /// Renames the staged file to `target` (same filesystem) and makes the
    /// rename durable (blocking): [`StagedBlob::rename_to`], then an fsync
    /// of the directory.
    pub fn persist(self, target: &Path) -> Result<(), BlobError> {
        self.rename_to(target)?;
        let dir = target.parent().expect("blob paths have a parent");
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
    }

    /// Renames the staged file to `target` (same filesystem), creating its
    /// directory, without making the rename durable (blocking). An existing
    /// file there has the same bytes (same digest), so replacing it is
    /// harmless. The file is readable by all (from its creation), like any
    /// file a package index serves, so a static export can hard-link blobs
    /// for a web server running as another user; the data directory's own
    /// permissions keep private packages private.
    pub fn rename_to(self, target: &Path) -> Result<(), BlobError> {
        let temp_path = self.temp_path;
        drop(self.file);
        let dir = target.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        temp_path.persist(target).map_err(|e| BlobError::Io { path: target.to_owned(), source: e.error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_digest_and_leaves_no_temp_files() {
        let root = tempfile::tempdir().unwrap();
        let store = Blobs::filesystem(root.path()).unwrap();
        let info = store.put_bytes(b"hello", None).await.unwrap();
        assert_eq!(info, BlobInfo { sha256: Sha256::of(b"hello"), size: 5 });
        assert_eq!(store.read(&info.sha256).await.unwrap().unwrap(), b"hello");
        let hex = info.sha256.to_hex();
        let path = root.path().join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(&hex);
        assert_eq!(std::fs::read(path).unwrap(), b"hello", "the filesystem layout");
        assert!(store.contains(&info.sha256).await);
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_mismatching_blob_is_never_published() {
        let root = tempfile::tempdir().unwrap();
        let store = Blobs::filesystem(root.path()).unwrap();
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
        let store = Blobs::filesystem(root.path()).unwrap();
        let digest = Sha256::of(b"hello");
        for publish in [false, true] {
            let mut writer = store.writer().unwrap();
            writer.write(b"hello").await.unwrap();
            let mut reader = writer.reader().unwrap();
            let finished = writer.finish(Some(digest)).unwrap();
            assert_eq!(finished.info(), BlobInfo { sha256: digest, size: 5 });
            let mut staged = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut staged).unwrap();
            assert_eq!(staged, b"hello");
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
    async fn bytes_staged_at_once_are_checked_first_and_readable_by_all_once_published() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let store = Blobs::filesystem(root.path()).unwrap();
        let digest = Sha256::of(b"hello");
        let err = store.stage_bytes(b"hellO", Some(digest)).err().expect("a mismatch");
        assert!(matches!(err, BlobError::HashMismatch { .. }));
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0, "nothing written");
        drop(store.stage_bytes(b"hello", None).unwrap());
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0, "dropped, removed");
        let staged = store.stage_bytes(b"hello", Some(digest)).unwrap();
        assert!(!store.contains(&digest).await);
        assert_eq!(publish_batch(vec![staged]).await.unwrap()[0], BlobInfo { sha256: digest, size: 5 });
        let hex = digest.to_hex();
        let path = root.path().join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(&hex);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[tokio::test]
    async fn a_batch_is_published_whole_and_leaves_no_temp_files() {
        let root = tempfile::tempdir().unwrap();
        let store = Blobs::filesystem(root.path()).unwrap();
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
            assert_eq!(store.read(&Sha256::of(content)).await.unwrap().unwrap(), content);
        }
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
        assert!(publish_batch(Vec::new()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_writer_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = Blobs::filesystem(root.path()).unwrap();
        let mut writer = store.writer().unwrap();
        writer.write(b"partial").await.unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }
}
