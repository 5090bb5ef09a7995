//! `larder migrate-store`: copies every blob of a store into other blobs
//! (the data directory's into a bucket, or back), verifying each digest on
//! the way. Resumable: a blob the target already holds (named by its
//! digest, and published there only once verified) is skipped, so a run
//! that was interrupted is simply run again.

use futures_util::{StreamExt, TryStreamExt};
use larder_index::Sha256;
use larder_store::{BlobError, BlobInfo, Blobs};

use crate::progress::Progress;

/// Blobs copied at once by default.
pub const JOBS: usize = 8;

/// What a copy did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Blobs copied, and their bytes.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Blobs the target held already, and their bytes.
    pub present: u64,
    /// Bytes the target held already.
    pub present_bytes: u64,
    /// Blobs removed from the source while the copy ran.
    pub gone: u64,
    /// Source blobs whose bytes do not hash to their name: not copied.
    pub corrupt: Vec<Sha256>,
}

/// Why a copy stopped (what was copied before stays copied).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Listing or reading the source failed.
    #[error("reading the source blobs: {0}")]
    Source(#[source] BlobError),
    /// Writing to the target failed.
    #[error("writing the target blobs: {0}")]
    Target(#[source] BlobError),
}

enum Outcome {
    Copied,
    Present,
    Gone,
    Corrupt,
}

/// Copies every blob of `source` that `target` does not hold, `jobs` at a
/// time, counting them on `progress`.
pub async fn copy_blobs(
    source: &Blobs,
    target: &Blobs,
    jobs: usize,
    progress: &Progress,
) -> Result<CopyReport, CopyError> {
    let mut blobs = source.list().await.map_err(CopyError::Source)?;
    blobs.sort_by_key(|stat| stat.info.sha256);
    progress.add_files(blobs.len() as u64);
    let mut report = CopyReport::default();
    let mut copies = futures_util::stream::iter(blobs)
        .map(|stat| async move { copy_one(source, target, stat.info).await.map(|outcome| (stat.info, outcome)) })
        .buffer_unordered(jobs.max(1));
    while let Some((info, outcome)) = copies.try_next().await? {
        match outcome {
            Outcome::Copied => {
                report.copied += 1;
                report.copied_bytes += info.size;
                progress.file_done(info.size);
            }
            Outcome::Present => {
                report.present += 1;
                report.present_bytes += info.size;
                progress.file_done(0);
            }
            Outcome::Gone => {
                report.gone += 1;
                progress.file_done(0);
            }
            Outcome::Corrupt => {
                tracing::warn!(sha256 = %info.sha256, "the source blob does not hash to its name; not copied");
                report.corrupt.push(info.sha256);
                progress.file_done(0);
            }
        }
    }
    report.corrupt.sort();
    Ok(report)
}

/// Copies one blob unless the target has it: streamed from the source into
/// the target's staging, published only when it hashes to its name.
async fn copy_one(source: &Blobs, target: &Blobs, info: BlobInfo) -> Result<Outcome, CopyError> {
    if target.size(&info.sha256).await.map_err(CopyError::Target)? == Some(info.size) {
        return Ok(Outcome::Present);
    }
    let Some(handle) = source.open(&info.sha256).await.map_err(CopyError::Source)? else {
        return Ok(Outcome::Gone);
    };
    let size = handle.size();
    let mut stream = handle.stream(0..size).await.map_err(CopyError::Source)?;
    let mut writer = target.writer().map_err(CopyError::Target)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| {
            CopyError::Source(BlobError::Io { path: format!("blob {}", info.sha256).into(), source })
        })?;
        writer.write(&chunk).await.map_err(CopyError::Target)?;
    }
    match writer.commit(Some(info.sha256)).await {
        Ok(_) => Ok(Outcome::Copied),
        Err(BlobError::HashMismatch { .. }) => Ok(Outcome::Corrupt),
        Err(error) => Err(CopyError::Target(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn filled(root: &std::path::Path, contents: &[&[u8]]) -> Blobs {
        let blobs = Blobs::filesystem(root).unwrap();
        for content in contents {
            blobs.put_bytes(content, None).await.unwrap();
        }
        blobs
    }

    #[tokio::test]
    async fn copies_what_is_missing_verifies_it_and_resumes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let contents: [&[u8]; 4] = [b"one", b"two", b"three", b"four"];
        let source = filled(a.path(), &contents).await;
        let target = Blobs::filesystem(b.path()).unwrap();
        let quiet = Progress::start(true);

        let report = copy_blobs(&source, &target, 2, &quiet).await.unwrap();
        assert_eq!((report.copied, report.copied_bytes, report.present), (4, 15, 0));
        for content in contents {
            assert_eq!(target.read(&Sha256::of(content)).await.unwrap().unwrap(), content);
        }

        // Interrupted after some: the rest is copied, the others skipped.
        target.remove(&Sha256::of(b"two")).await.unwrap();
        let report = copy_blobs(&source, &target, 2, &quiet).await.unwrap();
        assert_eq!((report.copied, report.copied_bytes, report.present, report.present_bytes), (1, 3, 3, 12));
        let again = copy_blobs(&source, &target, 2, &quiet).await.unwrap();
        assert_eq!((again.copied, again.present), (0, 4));
    }

    #[tokio::test]
    async fn a_corrupt_source_blob_is_reported_and_never_copied() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = filled(a.path(), &[b"good", b"soon bad"]).await;
        let bad = Sha256::of(b"soon bad");
        let hex = bad.to_hex();
        let path = a.path().join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(&hex);
        std::fs::write(&path, b"tampered").unwrap();
        let target = Blobs::filesystem(b.path()).unwrap();
        let report = copy_blobs(&source, &target, 1, &Progress::start(true)).await.unwrap();
        assert_eq!((report.copied, report.corrupt.clone()), (1, vec![bad]));
        assert!(!target.contains(&bad).await);
    }
}
