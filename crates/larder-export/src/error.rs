//! Why an export or an import failed.

use std::path::{Path, PathBuf};

use larder_index::Sha256;
use larder_store::{BlobError, DbError};

/// Why an export or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metadata database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Storing a blob failed (other than by a hash mismatch, which is
    /// [`Error::Bundle`]).
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Reading the view of an index failed.
    #[error(transparent)]
    Index(#[from] larder_indexes::IndexError),
    /// No index by that name.
    #[error("no index named {0:?} (see `larder index list`)")]
    UnknownIndex(String),
    /// Filesystem trouble.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// A stored blob does not hash to its name: the store is damaged.
    #[error("stored blob {expected} is corrupt (its content hashes to {actual}); nothing was exported")]
    CorruptBlob {
        /// The blob's name.
        expected: Sha256,
        /// What its content hashes to.
        actual: Sha256,
    },
    /// A store manifest file is unreadable or malformed.
    #[error("{path}: not a usable larder store manifest: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A bundle is malformed, truncated, tampered with or does not fit
    /// this store; nothing of it was imported.
    #[error("{path}: bundle refused, nothing was imported: {reason}")]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Maps an I/O error to [`Error::Io`] at `path`.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}
