//! `larder gc`: removes blobs no file refers to, and temporary files left by
//! crashes. Blobs younger than the grace period are kept, since a writer may
//! have published the blob but not yet its row.

use std::time::{Duration, SystemTime};

use larder_store::Store;

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
    let referenced = store.db.referenced_digests().await?;
    let blobs = store.blobs.clone();
    let (stored, temp) =
        tokio::task::spawn_blocking(move || Ok::<_, GcError>((blobs.list()?, blobs.stale_temp_files(grace)?)))
            .await
            .expect("listing blobs does not panic")?;
    let mut report = GcReport::default();
    let now = SystemTime::now();
    for (digest, size, modified) in stored {
        let old = now.duration_since(modified).is_ok_and(|age| age > grace);
        if referenced.contains(&digest) || !old {
            report.kept += 1;
            continue;
        }
        if !dry_run {
            store.blobs.remove(&digest).await?;
        }
        report.removed += 1;
        report.freed += size;
    }
    for path in temp {
        if !dry_run {
            let _ = std::fs::remove_file(&path);
        }
        report.temp_files += 1;
    }
    Ok(report)
}
