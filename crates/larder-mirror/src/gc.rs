//! `larder gc`: removes blobs no file refers to, and temporary files left by
//! crashes. Blobs younger than the grace period are kept, since a writer may
//! have published the blob but not yet its row.

use std::time::{Duration, SystemTime};

use larder_store::{BlobInfo, BlobStat, Store};

/// How old an unreferenced blob or temporary file must be to go.
pub const GRACE: Duration = Duration::from_secs(3600);

/// What garbage collection did (or, dry, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Blobs kept.
    pub kept: u64,
    /// Unreferenced blobs removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed: u64,
    /// Stale temporary files removed.
    pub temp_files: u64,
}

/// Why garbage collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] larder_store::DbError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] larder_store::BlobError),
}

/// Removes what nothing refers to (`dry_run`: only reports it).
pub async fn gc(store: &Store, grace: Duration, dry_run: bool) -> Result<GcReport, GcError> {
    let referenced = store.db().referenced_digests().await?;
    let stored = store.blobs().list().await?;
    let mut report = GcReport::default();
    let now = SystemTime::now();
    for BlobStat { info: BlobInfo { sha256: digest, size }, modified } in stored {
        let old = now.duration_since(modified).is_ok_and(|age| age > grace);
        if referenced.contains(&digest) || !old {
            report.kept += 1;
            continue;
        }
        if !dry_run {
            store.blobs().remove(&digest).await?;
        }
        report.removed += 1;
        report.freed += size;
    }
    let blobs = store.blobs().clone();
    report.temp_files = tokio::task::spawn_blocking(move || blobs.remove_stale_staged(grace, dry_run))
        .await
        .expect("removing staged files does not panic")?;
    Ok(report)
}
