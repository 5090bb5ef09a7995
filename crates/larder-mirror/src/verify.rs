//! `larder verify [--repair] [--since D] [--sample N] [--jobs N]`: stored
//! file and metadata blobs are hashed (several at once) and checked
//! against the digests their rows record. Each file row remembers when
//! its blobs were last found sound, so `--since` skips what was checked
//! recently, and a rolling `--sample N` checks the next N blobs after
//! where the previous sample stopped: a large store is covered a slice
//! per run. Memory stays bounded by a batch of rows.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use jiff::Timestamp;
use larder_index::{Hasher, Sha256};
use larder_proxy::{Proxy, metadata};
use larder_store::db::mirror::CheckedFile;
use larder_store::{FileRecord, Store};

use crate::progress::Progress;

/// Rows read per batch.
const BATCH: i64 = 1000;

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Remove corrupt blobs and fetch proxied files again.
    pub repair: bool,
    /// Skip files whose blobs were found sound less than this long ago.
    pub since: Option<Duration>,
    /// Check at most this many files, going on from where the previous
    /// sample stopped (and starting over after the last file).
    pub sample: Option<u64>,
    /// Blobs hashed at once.
    pub jobs: usize,
}

/// What verification found (and repaired).
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs hashed.
    pub checked: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Files skipped because they were found sound recently (`--since`).
    pub recent: u64,
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
    options: &VerifyOptions,
    progress: &Progress,
) -> Result<VerifyReport, larder_store::DbError> {
    let mut report = VerifyReport::default();
    let recent_after = options.since.map(|since| Timestamp::now() - since);
    let mut cursor = if options.sample.is_some() { store.db().verify_cursor().await? } else { None };
    let mut budget = options.sample.unwrap_or(u64::MAX);
    while budget > 0 {
        let mut batch = store.db().files_after(cursor.as_ref(), BATCH).await?;
        if batch.is_empty() {
            cursor = None;
            break;
        }
        batch.truncate(budget.min(batch.len() as u64) as usize);
        budget -= batch.len() as u64;
        let last = batch.last().expect("not empty");
        cursor = Some((last.index.clone(), last.file.filename.clone()));
        let (recent, due): (Vec<CheckedFile>, Vec<CheckedFile>) = batch
            .into_iter()
            .partition(|row| recent_after.is_some_and(|after| row.checked_at.is_some_and(|at| at >= after)));
        report.recent += recent.len() as u64;
        progress.add_files(due.len() as u64);
        let hashes = hash_blobs(store, &due, options.jobs).await;
        let mut sound = Vec::new();
        for row in &due {
            let before = report.bytes;
            check_file(store, proxy, options.repair, &row.file, &hashes, &mut report).await;
            let matches = |digest: Sha256| hashes.get(&digest).copied().flatten().map(|(actual, _)| actual == digest);
            let metadata_sound = row.file.metadata_sha256.is_none_or(|digest| matches(digest) != Some(false));
            if matches(row.file.sha256) == Some(true) && metadata_sound {
                sound.push(row.file.sha256);
            }
            progress.file_done(report.bytes - before);
        }
        store.db().record_checks(&sound, Timestamp::now()).await?;
    }
    if options.sample.is_some() {
        store.db().set_verify_cursor(cursor.as_ref()).await?;
    }
    Ok(report)
}

/// The digest and size of every blob the rows name (`None`: not stored),
/// hashed `jobs` at a time.
async fn hash_blobs(store: &Store, rows: &[CheckedFile], jobs: usize) -> HashMap<Sha256, Option<(Sha256, u64)>> {
    let mut digests: Vec<Sha256> =
        rows.iter().flat_map(|row| std::iter::once(row.file.sha256).chain(row.file.metadata_sha256)).collect();
    digests.sort_unstable();
    digests.dedup();
    stream::iter(digests)
        .map(|digest| async move { (digest, hash_blob(store, &digest).await) })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await
}

async fn check_file(
    store: &Store,
    proxy: Option<&Proxy>,
    repair: bool,
    file: &FileRecord,
    hashes: &HashMap<Sha256, Option<(Sha256, u64)>>,
    report: &mut VerifyReport,
) {
    match hashes.get(&file.sha256).copied().flatten() {
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
    check_metadata_extracted(store, repair, file, report).await;
    if let Some(metadata) = file.metadata_sha256
        && let Some((actual, size)) = hashes.get(&metadata).copied().flatten()
    {
        report.checked += 1;
        report.bytes += size;
        if actual != metadata {
            tracing::error!(filename = %file.filename, "corrupt core metadata blob");
            report.corrupt.push((format!("{}.metadata", file.filename), metadata));
            if repair && store.blobs().remove(&metadata).await.is_ok() {
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
    if let Err(error) = store.blobs().remove(&file.sha256).await {
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

/// The digest and size of a stored blob, or `None` when it is not stored
/// or cannot be read to its end. A local blob is read from its file on a
/// blocking thread; a remote one (S3) is hashed as it streams, never copied.
async fn hash_blob(store: &Store, sha256: &Sha256) -> Option<(Sha256, u64)> {
    let handle = store.blobs().open(sha256).await.ok()??;
    match handle.into_local_file() {
        Ok(file) => tokio::task::spawn_blocking(move || hash_file(file)).await.ok().flatten(),
        Err(remote) => {
            let size = remote.size();
            let mut stream = remote.stream(0..size).await.ok()?;
            let (mut hasher, mut read) = (Hasher::default(), 0u64);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.ok()?;
                hasher.update(&chunk);
                read += chunk.len() as u64;
            }
            Some((hasher.finish(), read))
        }
    }
}

/// The digest and size of a local blob's file, read from the start.
fn hash_file(mut file: std::fs::File) -> Option<(Sha256, u64)> {
    file.rewind().ok()?;
    let (mut hasher, mut size) = (Hasher::default(), 0u64);
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let read = file.read(&mut buffer).ok()?;
        if read == 0 {
            return Some((hasher.finish(), size));
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
}
