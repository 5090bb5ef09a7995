//! A mirror's downloads are stored a batch at a time: the verified files
//! (and the core metadata read from the wheels) of a batch are made
//! durable and published together ([`larder_store::publish_batch`]), then
//! their rows are written in one transaction. Nothing is visible before
//! it is verified and on disk; a crash loses at most the batch not yet
//! published (its temporary files are left to `larder gc`), and the next
//! run downloads it again.

use std::time::{Duration, Instant};

use larder_index::NormalizedName;
use larder_proxy::{BatchFetch, LeaseGuard, Unpublished};
use larder_store::{FileRecord, FinishedBlob, Store, StoredDownload, publish_batch};

/// Files per batch.
const FILES: usize = 256;
/// Bytes per batch (a batch also ends at this many bytes downloaded).
const BYTES: u64 = 256 * 1024 * 1024;
/// A batch also ends once its first file has waited this long, so a slow
/// run still stores as it goes.
const AGE: Duration = Duration::from_secs(1);

/// Downloads waiting to be stored.
#[derive(Default)]
pub(crate) struct Batch {
    blobs: Vec<FinishedBlob>,
    stored: Vec<StoredDownload>,
    projects: Vec<NormalizedName>,
    /// The leases on fetching the files (with a database other nodes
    /// share), let go once the batch is stored or has failed.
    leases: Vec<LeaseGuard>,
    bytes: u64,
    started: Option<Instant>,
}

impl Batch {
    /// Adds a fetched file of `project`; returns the bytes downloaded for
    /// it (0 when it was stored already).
    pub(crate) fn push(&mut self, project: NormalizedName, file: &FileRecord, fetched: BatchFetch) -> u64 {
        let (size, downloaded, metadata) = match fetched {
            BatchFetch::Stored(size) => (size, 0, None),
            BatchFetch::Downloaded(unpublished) => {
                let Unpublished { blob, metadata, lease } = *unpublished;
                self.leases.push(lease);
                let size = blob.info().size;
                self.blobs.push(blob);
                let digest = metadata.map(|metadata| {
                    let digest = metadata.info().sha256;
                    self.blobs.push(metadata);
                    digest
                });
                (size, size, digest)
            }
        };
        self.bytes += downloaded;
        self.started.get_or_insert_with(Instant::now);
        self.stored.push(StoredDownload { sha256: file.sha256, filename: file.filename.clone(), size, metadata });
        self.projects.push(project);
        downloaded
    }

    /// When the batch is due to be stored by its age, although no more
    /// downloads end (they may be waiting for another node's leases, which
    /// may wait for this batch's); `None` while it is empty.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.started.map(|started| started + AGE)
    }

    /// True when the batch should be stored now.
    pub(crate) fn is_full(&self) -> bool {
        self.stored.len() >= FILES || self.bytes >= BYTES || self.started.is_some_and(|s| s.elapsed() >= AGE)
    }

    /// Publishes and records the batch and starts a new one. On an error,
    /// returns the projects of the batch with the reason: none of their
    /// files of this batch may be recorded.
    pub(crate) async fn store(&mut self, store: &Store) -> Result<(), (Vec<NormalizedName>, String)> {
        // The leases go at the end, once the files are stored (or not).
        let Batch { blobs, stored, projects, leases: _leases, .. } = std::mem::take(self);
        if stored.is_empty() {
            return Ok(());
        }
        let result = match publish_batch(blobs).await {
            Ok(_) => store.db().record_downloads(&stored).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        result.map_err(|reason| (projects, reason))
    }
}
