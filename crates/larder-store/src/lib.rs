//! Storage for larder: content-addressed blobs ([`BlobStore`]) and the
//! metadata database ([`Database`]), opened together as a [`Store`] over
//! one data directory.
//!
//! Every write is atomic and crash-safe: blobs are published by rename after
//! fsync and hash verification, metadata changes are SQLite transactions.
//! Several processes may share one data directory.

pub mod blobs;
pub mod db;
pub mod s3;

use std::path::{Path, PathBuf};

pub use blobs::{BlobError, BlobInfo, BlobStore, BlobWriter, FinishedBlob, publish_batch};
pub use db::private::{PROVENANCE_SUFFIX, TokenRecord, UploadDetails, UploadOutcome};
pub use db::proxied::{PageState, StoredDownload, UpstreamMeta};
pub use db::{AddOutcome, Database, DbError, FileRecord, NewFile, ProjectRecord, ProjectSummary, UPSTREAM_INDEX};
pub use s3::{S3Blobs, S3Error, S3Location, S3LocationError, S3Settings};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One data directory: blobs and metadata.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// The blobs.
    pub blobs: BlobStore,
    /// The metadata.
    pub db: Database,
}

impl Store {
    /// Opens the data directory, creating and migrating it when needed.
    pub async fn open(root: &Path) -> Result<Self, OpenError> {
        let blobs = BlobStore::open(root)?;
        let db = Database::open(&root.join("larder.db")).await?;
        Ok(Self { root: root.to_owned(), blobs, db })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes free for larder on the file system of the data directory
    /// (what an unprivileged writer may still use).
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.root)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}
