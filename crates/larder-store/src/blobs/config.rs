//! Choosing where blobs live: [`BlobsConfig`], opened by [`Blobs::from_config`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::OpenError;
use crate::blobs::{BlobBackend, Blobs, CachedBackend, S3Blobs, S3Location, S3LocationError, S3Settings};

/// Where blobs are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BlobLocation {
    /// On local disk in the data directory (`DATA_DIR/blobs`), the
    /// single-machine default.
    #[default]
    DataDir,
    /// In an S3-compatible bucket, `s3://BUCKET/PREFIX`.
    S3(S3Location),
}

impl FromStr for BlobLocation {
    type Err = S3LocationError;

    /// `s3://BUCKET/PREFIX`, or `data-dir` for the default.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "data-dir" => Ok(BlobLocation::DataDir),
            url => url.parse().map(BlobLocation::S3),
        }
    }
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::DataDir => f.write_str("data-dir"),
            BlobLocation::S3(location) => location.fmt(f),
        }
    }
}

/// How to open a store's blobs.
#[derive(Clone, Debug, Default)]
pub struct BlobsConfig {
    /// Where they are.
    pub location: BlobLocation,
    /// Connection settings for S3 (over the AWS variables).
    pub s3: S3Settings,
    /// The size of the local disk cache in front of a remote backend
    /// (`DATA_DIR/blob-cache`); none without.
    pub cache_size: Option<u64>,
}

impl Blobs {
    /// Opens the blobs `config` names for the data directory `data_dir`,
    /// where new blobs are staged whatever the backend. An S3 bucket is
    /// asked once, so a wrong endpoint, bucket or key is reported now.
    pub async fn from_config(data_dir: &Path, config: &BlobsConfig) -> Result<Self, OpenError> {
        match &config.location {
            BlobLocation::DataDir => Ok(Blobs::filesystem(data_dir)?),
            BlobLocation::S3(location) => {
                let s3 = S3Blobs::new(location.clone(), &config.s3)?;
                s3.check().await?;
                let backend: Arc<dyn BlobBackend> = match config.cache_size.filter(|size| *size > 0) {
                    Some(size) => Arc::new(CachedBackend::open(Arc::new(s3), &data_dir.join("blob-cache"), size)?),
                    None => Arc::new(s3),
                };
                Ok(Blobs::new(backend, &data_dir.join("tmp"))?)
            }
        }
    }
}
