//! Storage for larder: content-addressed blobs ([`Blobs`], behind the
//! [`BlobBackend`] trait) and the metadata database ([`Database`]), opened
//! together as a [`Store`].
//!
//! Every write is atomic and crash-safe: blobs are published only once
//! verified and durable, metadata changes are transactions. Several
//! processes may share one store. The store is opaque: no filesystem path
//! of a blob and no database connection leaves this crate.

pub mod blobs;
pub mod db;
mod health;

use std::path::Path;

pub use blobs::{
    BlobBackend, BlobError, BlobHandle, BlobInfo, BlobLocation, BlobStat, BlobWriter, Blobs, BlobsConfig, ByteStream,
    CachedBackend, FinishedBlob, RemoteBlob, S3Blobs, S3Error, S3Location, S3LocationError, S3Settings, SecretKey,
    StagedBlob, publish_batch,
};
pub use db::cache::{BlobUse, CachedBlob, KindSize, StoreSizes};
pub use db::changes::{ChangeListener, ChangeNotice};
pub use db::private::{PROVENANCE_SUFFIX, TokenRecord, UploadDetails, UploadOutcome};
pub use db::proxied::{PageState, StoredDownload, UpstreamMeta};
pub use db::{
    AddOutcome, Database, DatabaseLocation, DatabaseUrlError, DbError, FileRecord, NewFile, ProjectRecord,
    ProjectSummary, UPSTREAM_INDEX,
};
pub use health::Unavailable;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The S3 bucket could not be used.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Blobs and metadata. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    blobs: Blobs,
    db: Database,
}

impl Store {
    /// Opens the single-machine store in the data directory `root` (blobs
    /// on disk, an embedded SQLite database), creating and migrating it
    /// when needed.
    pub async fn open(root: &Path) -> Result<Self, OpenError> {
        Self::open_with(root, &BlobsConfig::default(), &DatabaseLocation::in_data_dir(root)).await
    }

    /// Opens the store of the data directory `root` with its blobs where
    /// `blobs` says (staged in `root` whatever the backend) and its
    /// metadata in the database at `database` (created and migrated when
    /// needed).
    pub async fn open_with(root: &Path, blobs: &BlobsConfig, database: &DatabaseLocation) -> Result<Self, OpenError> {
        let blobs = Blobs::from_config(root, blobs).await?;
        let db = Database::connect(database).await?;
        Ok(Self { blobs, db })
    }

    /// A store over the given blobs and database.
    pub fn new(blobs: Blobs, db: Database) -> Self {
        Self { blobs, db }
    }

    /// The blobs.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The metadata.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Bytes free for larder on the local file system where new blobs are
    /// staged (the data directory), what an unprivileged writer may still
    /// use.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        self.blobs.free_bytes()
    }
}
