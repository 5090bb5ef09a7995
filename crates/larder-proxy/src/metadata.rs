//! Core metadata is part of what a stored wheel must have: its METADATA,
//! extracted from the stored wheel, stored as a blob and recorded on the
//! file's row. Extraction normally follows the download; when it did not
//! happen (a crash or a full disk right after storing the wheel), it is
//! redone from the stored wheel, lazily when a page is rendered and by
//! `larder verify --repair`.

use larder_index::{DistFilename, Sha256};
use larder_store::{BlobError, DbError, FileRecord, Store};

/// Why a stored wheel's metadata could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The stored wheel could not be opened.
    #[error("cannot open the stored wheel {filename}: {source}")]
    Open {
        /// The wheel.
        filename: String,
        /// What went wrong.
        source: BlobError,
    },
    /// The wheel's archive or METADATA could not be read.
    #[error("cannot read the core metadata of {filename}: {source}")]
    Unreadable {
        /// The wheel.
        filename: String,
        /// What went wrong (boxed: the archive's errors are large, and
        /// this error is returned by value on the download path).
        source: Box<larder_dist::DistError>,
    },
    /// The upstream advertises metadata with another digest; its own is
    /// fetched on demand instead.
    #[error("{filename}: the upstream advertises other core metadata (sha256 {advertised}) than the wheel holds")]
    Mismatch {
        /// The wheel.
        filename: String,
        /// What the upstream advertised.
        advertised: Sha256,
    },
    /// The blob could not be written.
    #[error("cannot store the core metadata of {filename}: {source}")]
    Blob {
        /// The wheel.
        filename: String,
        /// What went wrong.
        source: BlobError,
    },
    /// The row could not be written.
    #[error("cannot record the core metadata of {filename}: {source}")]
    Record {
        /// The wheel.
        filename: String,
        /// What went wrong.
        source: DbError,
    },
}

/// Whether `record` is a stored wheel whose core metadata is not stored.
pub async fn is_missing(store: &Store, record: &FileRecord) -> bool {
    if wheel(record).is_none() {
        return false;
    }
    // Most listed wheels are not stored (a page just fetched, a proxy's
    // pages): one look for the wheel settles those.
    if !store.blobs().contains(&record.sha256).await {
        return false;
    }
    match record.metadata_sha256 {
        Some(digest) => !store.blobs().contains(&digest).await,
        None => true,
    }
}

/// Reads the METADATA of a stored wheel and checks it against what the
/// upstream advertised; `Ok(None)` for a file that is not a wheel.
pub async fn read(store: &Store, record: &FileRecord) -> Result<Option<(Vec<u8>, Sha256)>, MetadataError> {
    if wheel(record).is_none() {
        return Ok(None);
    }
    let open_error = |source| MetadataError::Open { filename: record.filename.clone(), source };
    let blob = store.blobs().open(&record.sha256).await.map_err(open_error)?;
    let file = blob.ok_or(BlobError::Gone(record.sha256)).map_err(open_error)?.into_file().await.map_err(open_error)?;
    let record = record.clone();
    tokio::task::spawn_blocking(move || read_from_file(&record, file)).await.expect("reading a wheel does not panic")
}

/// [`read`] from the wheel's bytes in `file` (a verified download not
/// published yet, for one). Blocking: call from a blocking task.
pub(crate) fn read_from_file(
    record: &FileRecord,
    file: std::fs::File,
) -> Result<Option<(Vec<u8>, Sha256)>, MetadataError> {
    let Some(dist) = wheel(record) else { return Ok(None) };
    read_checked(record, &dist, std::io::BufReader::new(file)).map(Some)
}

/// [`read`] from the wheel's bytes held in memory (a small verified
/// download). Blocking: call from a blocking task.
pub(crate) fn read_from_bytes(record: &FileRecord, bytes: &[u8]) -> Result<Option<(Vec<u8>, Sha256)>, MetadataError> {
    let Some(dist) = wheel(record) else { return Ok(None) };
    read_checked(record, &dist, std::io::Cursor::new(bytes)).map(Some)
}

/// The parsed filename of `record` when it is a wheel.
fn wheel(record: &FileRecord) -> Option<DistFilename> {
    DistFilename::parse(&record.filename).ok().filter(|dist| matches!(dist, DistFilename::Wheel(_)))
}

/// The METADATA of the wheel `record` read from `archive`, with its
/// digest, checked against what the upstream advertised.
fn read_checked(
    record: &FileRecord,
    dist: &DistFilename,
    archive: impl std::io::Read + std::io::Seek,
) -> Result<(Vec<u8>, Sha256), MetadataError> {
    let bytes = larder_dist::read_core_metadata(&record.filename, dist, archive)
        .map_err(|source| MetadataError::Unreadable { filename: record.filename.clone(), source: Box::new(source) })?;
    let digest = Sha256::of(&bytes);
    if let Some(advertised) = record.metadata_sha256.filter(|advertised| *advertised != digest) {
        return Err(MetadataError::Mismatch { filename: record.filename.clone(), advertised });
    }
    Ok((bytes, digest))
}

/// Extracts the METADATA of a stored wheel ([`read`]), stores it and
/// records it on the file's row (advertised on pages). Returns its digest;
/// `Ok(None)` for a file that is not a wheel.
pub async fn extract(store: &Store, record: &FileRecord) -> Result<Option<Sha256>, MetadataError> {
    let Some((bytes, digest)) = read(store, record).await? else { return Ok(None) };
    let filename = || record.filename.clone();
    let blob = store
        .blobs()
        .put_bytes(&bytes, Some(digest))
        .await
        .map_err(|source| MetadataError::Blob { filename: filename(), source })?;
    store
        .db()
        .record_metadata(&record.sha256, &record.filename, &blob.sha256, true)
        .await
        .map_err(|source| MetadataError::Record { filename: filename(), source })?;
    Ok(Some(digest))
}

/// Completes `files` (one page's records) in place: each stored wheel
/// whose metadata is missing gets it extracted now. Failures are logged
/// and leave the record as it was.
pub async fn complete(store: &Store, files: &mut [FileRecord]) {
    for record in files {
        if !is_missing(store, record).await {
            continue;
        }
        match extract(store, record).await {
            Ok(Some(digest)) => {
                tracing::info!(filename = %record.filename, "extracted the missing core metadata of a stored wheel");
                record.metadata_sha256 = Some(digest);
                record.serve_metadata = true;
            }
            Ok(None) => {}
            Err(error @ MetadataError::Mismatch { .. }) => tracing::debug!(%error, "core metadata not extracted"),
            Err(error) => tracing::warn!(%error, "core metadata not extracted"),
        }
    }
}
