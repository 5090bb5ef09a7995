//! `larder verify [--repair]`: every stored file and metadata blob is
//! hashed and checked against the digest its rows record.

use std::collections::HashSet;
use std::io::Read;

use larder_index::{Hasher, Sha256};
use larder_proxy::{Proxy, metadata};
use larder_store::{FileRecord, Store};

use crate::progress::Progress;

/// Rows read per batch.
const BATCH: i64 = 1000;

/// What verification found (and repaired).
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs hashed.
    pub checked: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Blobs whose content does not match their digest: `(filename, digest)`.
    pub corrupt: Vec<(String, Sha256)>,
    /// Hosted files whose blob is gone (they cannot be fetched again).
    pub missing: Vec<String>,
    /// Corrupt blobs fetched again from the upstream and now correct.
    pub repaired: u64,
    /// Corrupt blobs removed (to be fetched again on demand).
    pub removed: u64,
    /// Stored wheels whose core metadata is not stored (a crash or a full
    /// disk right after the wheel was stored), with why when it cannot
    /// be extracted.
    pub metadata_missing: Vec<(String, Option<String>)>,
    /// Of those, how many had it extracted again (with `--repair`).
    pub metadata_extracted: u64,
}

/// Verifies the store; with `repair`, removes corrupt blobs and fetches
/// proxied files again through `proxy` (when given and online).
pub async fn verify(
    store: &Store,
    proxy: Option<&Proxy>,
    repair: bool,
    progress: &Progress,
) -> Result<VerifyReport, larder_store::DbError> {
    let mut report = VerifyReport::default();
    let mut seen: HashSet<Sha256> = HashSet::new();
    let mut cursor = None;
    loop {
        let batch = store.db.files_after(cursor.as_ref(), BATCH).await?;
        let Some((index, last)) = batch.last() else { break };
        cursor = Some((index.clone(), last.filename.clone()));
        progress.add_files(batch.len() as u64);
        for (_, file) in &batch {
            let before = report.bytes;
            check_file(store, proxy, repair, file, &mut seen, &mut report).await;
            progress.file_done(report.bytes - before);
        }
    }
    Ok(report)
}

async fn check_file(
    store: &Store,
    proxy: Option<&Proxy>,
    repair: bool,
    file: &FileRecord,
    seen: &mut HashSet<Sha256>,
    report: &mut VerifyReport,
) {
    if seen.insert(file.sha256) {
        match hash_blob(store, &file.sha256).await {
            None if file.url.is_none() => report.missing.push(file.filename.clone()),
            None => {}
            Some((actual, size)) => {
                report.checked += 1;
                report.bytes += size;
                if actual != file.sha256 {
                    tracing::error!(filename = %file.filename, expected = %file.sha256, %actual, "corrupt blob");
                    report.corrupt.push((file.filename.clone(), file.sha256));
                    if repair {
                        repair_blob(store, proxy, file, report).await;
                    }
                }
            }
        }
    }
    check_metadata_extracted(store, repair, file, report).await;
    if let Some(metadata) = file.metadata_sha256
        && seen.insert(metadata)
        && let Some((actual, size)) = hash_blob(store, &metadata).await
    {
        report.checked += 1;
        report.bytes += size;
        if actual != metadata {
            tracing::error!(filename = %file.filename, "corrupt core metadata blob");
            report.corrupt.push((format!("{}.metadata", file.filename), metadata));
            if repair && store.blobs.remove(&metadata).await.is_ok() {
                report.removed += 1;
            }
        }
    }
}

/// Reports a stored wheel whose core metadata is not stored (unless the
/// upstream advertises other metadata, fetched on demand), and with
/// `repair` extracts it again.
async fn check_metadata_extracted(store: &Store, repair: bool, file: &FileRecord, report: &mut VerifyReport) {
    if !metadata::is_missing(store, file).await {
        return;
    }
    let found = if repair {
        metadata::extract(store, file).await.map(|d| d.is_some())
    } else {
        metadata::read(store, file).await.map(|m| m.is_some())
    };
    match found {
        Ok(false) | Err(metadata::MetadataError::Mismatch { .. }) => {}
        Ok(true) => {
            report.metadata_missing.push((file.filename.clone(), None));
            if repair {
                report.metadata_extracted += 1;
            }
        }
        Err(error) => report.metadata_missing.push((file.filename.clone(), Some(error.to_string()))),
    }
}

async fn repair_blob(store: &Store, proxy: Option<&Proxy>, file: &FileRecord, report: &mut VerifyReport) {
    if let Err(error) = store.blobs.remove(&file.sha256).await {
        tracing::error!(filename = %file.filename, %error, "cannot remove the corrupt blob");
        return;
    }
    report.removed += 1;
    let Some(proxy) = proxy.filter(|_| file.url.is_some()) else { return };
    match proxy.ensure_stored(file).await {
        Ok(_) => {
            report.repaired += 1;
            tracing::info!(filename = %file.filename, "fetched again from the upstream");
        }
        Err(error) => {
            tracing::warn!(filename = %file.filename, %error, "cannot fetch it again now; it will be fetched on demand")
        }
    }
}

/// The digest and size of a stored blob, or `None` when it is not stored.
async fn hash_blob(store: &Store, sha256: &Sha256) -> Option<(Sha256, u64)> {
    let path = store.blobs.path(sha256);
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path).ok()?;
        let mut hasher = Hasher::default();
        let mut buffer = vec![0u8; 1024 * 1024];
        let mut size = 0u64;
        loop {
            let read = file.read(&mut buffer).ok()?;
            if read == 0 {
                return Some((hasher.finish(), size));
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
    })
    .await
    .ok()
    .flatten()
}
