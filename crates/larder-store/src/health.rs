//! A cheap check that both halves of the store answer, for `/health`: a
//! load balancer takes a node whose database or bucket is away out of
//! rotation, and the answer says which one it is.

use std::time::Duration;

use larder_index::Sha256;

use crate::{BlobError, DbError, Store};

/// A part of the store that failed a health check.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The metadata database did not answer a read.
    #[error("metadata database unavailable: {0}")]
    Database(#[source] DbError),
    /// The blob store did not answer a look-up.
    #[error("blob store unavailable: {0}")]
    Blobs(#[source] BlobError),
    /// A part did not answer in time.
    #[error("{part} did not answer within {within:?}")]
    Silent {
        /// `metadata database` or `blob store`.
        part: &'static str,
        /// How long it was given.
        within: Duration,
    },
}

/// The digest the blob store is asked about: any answer, found or not,
/// shows it is there (a `HEAD` of one object in a bucket).
fn probe_digest() -> Sha256 {
    Sha256::of(b"larder health probe")
}

impl Store {
    /// Checks that the database (a read of the newest serial) and the blob
    /// store (a look-up of one blob) both answer, each within `within`.
    /// Returns what did not, empty when all is well.
    pub async fn check(&self, within: Duration) -> Vec<Unavailable> {
        let silent = |part| Unavailable::Silent { part, within };
        let probe = probe_digest();
        let (database, blobs) = tokio::join!(
            tokio::time::timeout(within, self.db().last_serial()),
            tokio::time::timeout(within, self.blobs().stat(&probe)),
        );
        let database = match database {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(Unavailable::Database(error)),
            Err(_) => Some(silent("metadata database")),
        };
        let blobs = match blobs {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(Unavailable::Blobs(error)),
            Err(_) => Some(silent("blob store")),
        };
        database.into_iter().chain(blobs).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_that_answers_is_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert!(store.check(Duration::from_secs(5)).await.is_empty());
        let silent = Unavailable::Silent { part: "blob store", within: Duration::from_secs(3) };
        assert_eq!(silent.to_string(), "blob store did not answer within 3s");
    }
}
