//! Blobs in an S3-compatible object store: a blob is the object
//! `<PREFIX>/blobs/sha256/<aa>/<bb>/<hex>` of a bucket named by an
//! `s3://BUCKET/PREFIX` URL (the filesystem store's layout under the
//! prefix, so a store moves between the two file for file).
//!
//! [`S3Blobs::publish_file`] uploads a local file straight to the blob's
//! final key, hashing it on the way, and completes the upload only when the
//! bytes hash to the blob's name: an S3 object becomes visible only when
//! its upload completes (one PUT, or the completion of a multipart upload
//! for large blobs), so readers see a blob whole or not at all, nothing
//! unverified is ever published, and a node killed mid-upload leaves at most
//! an unfinished multipart upload that no reader sees (a bucket lifecycle
//! rule removes those). Each request also carries its content's SHA-256
//! (`x-amz-checksum-sha256`, per part for multipart), so the server refuses
//! bytes damaged on the way. An object already there has the same bytes
//! (content addressing): publishing it again uploads nothing.
//!
//! Reads ([`S3Blobs::stream`]) stream the object, or a byte range of it, as
//! it arrives: a blob is never held whole in memory.
//!
//! Endpoint, region and credentials come from the usual AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, ...),
//! overridden by [`S3Settings`]. Neither the settings nor the store ever
//! print a secret (their `Debug` leaves it out).
//!
//! [`S3Blobs`] is a [`BlobBackend`]: new blobs are staged on local disk as
//! for the filesystem backend, then uploaded by [`BlobBackend::publish`];
//! reads hand out a [`BlobHandle`] that streams the object (a ranged GET
//! for a range).

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use larder_index::{Hasher, Sha256};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::blobs::{BlobBackend, BlobError, BlobHandle, BlobInfo, BlobStat, ByteStream, RemoteBlob, StagedBlob};

/// Read size when uploading a local file.
const READ_CHUNK: usize = 256 * 1024;

/// Part size of multipart uploads; blobs up to this size go up in one PUT.
/// S3 wants parts of 5 MiB at least (the last one excepted).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts of one blob uploaded at once.
const UPLOAD_CONCURRENCY: usize = 2;

/// Blobs of one batch uploaded at once.
const BATCH_CONCURRENCY: usize = 8;

/// Where blobs go: `s3://BUCKET/PREFIX` (the prefix may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    bucket: String,
    prefix: String,
}

/// Why an `s3://` URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("not an s3://BUCKET/PREFIX URL ({reason}): {url}")]
pub struct S3LocationError {
    url: String,
    reason: &'static str,
}

impl FromStr for S3Location {
    type Err = S3LocationError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let error = |reason| S3LocationError { url: without_userinfo(url), reason };
        let rest = url.strip_prefix("s3://").ok_or_else(|| error("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(error("no bucket"));
        }
        // Credentials never go in the URL (they would be shown): a bucket
        // name is letters, digits, '.', '-' and '_'.
        if !bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
            return Err(error("a bucket name has letters, digits, '.', '-' and '_' only; credentials go in AWS_*"));
        }
        if rest.contains(['?', '#']) {
            return Err(error("a query or fragment"));
        }
        let prefix = prefix.trim_matches('/');
        // object_store's paths refuse these; say so before any request.
        if prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !prefix.is_empty() {
            return Err(error("an empty, '.' or '..' path segment"));
        }
        Ok(Self { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl S3Location {
    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/` (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A secret (an S3 secret access key) that prints as `<redacted>` in every
/// `Debug` output, so settings and configs can derive `Debug` safely.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretKey(String);

impl SecretKey {
    /// The secret itself, for the one place that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        SecretKey(secret)
    }
}

impl From<&str> for SecretKey {
    fn from(secret: &str) -> Self {
        SecretKey(secret.to_owned())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Connection settings that override the AWS variables; `None` keeps what
/// the environment says.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// The endpoint URL (an S3-compatible server: `http://127.0.0.1:3900`).
    /// An `http://` endpoint allows plain HTTP.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (never printed).
    pub secret_access_key: Option<SecretKey>,
}

/// Why an S3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The object store refused or could not be reached.
    #[error("S3 {operation} failed{}: {source}", blob_suffix(.sha256))]
    Request {
        /// What was being done (`head`, `get`, `put`, `delete`, `list`, ...).
        operation: &'static str,
        /// The blob, for operations on one.
        sha256: Option<Sha256>,
        /// What went wrong (never with a secret in it).
        source: object_store::Error,
    },
    /// The local file to publish does not hash to the blob's name: nothing
    /// was published.
    #[error("content hash mismatch: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        /// The digest the caller said the content has.
        expected: Sha256,
        /// The digest of the file.
        actual: Sha256,
    },
    /// The bucket did not answer when first asked ([`S3Blobs::check`]).
    #[error(
        "cannot use the blob store {location} at {endpoint}: {source}; check the endpoint (AWS_ENDPOINT_URL or \
         [s3] endpoint in the config file), that the bucket exists, the credentials (AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or [s3] in the config file) and that this machine can reach the server"
    )]
    Unreachable {
        /// The bucket and prefix.
        location: S3Location,
        /// The endpoint asked (never with credentials in it).
        endpoint: String,
        /// What went wrong.
        source: Box<object_store::Error>,
    },
    /// The local file to publish could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

fn blob_suffix(sha256: &Option<Sha256>) -> String {
    sha256.map(|sha256| format!(" for blob {sha256}")).unwrap_or_default()
}

fn request_error(operation: &'static str, sha256: Option<&Sha256>, source: object_store::Error) -> S3Error {
    S3Error::Request { operation, sha256: sha256.copied(), source }
}

/// Blobs as objects in an S3-compatible bucket. Cheap to clone.
#[derive(Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    location: S3Location,
    /// The endpoint, for messages (credentials in it removed).
    endpoint: String,
    /// `<prefix>/blobs/sha256`.
    root: Path,
}

impl fmt::Debug for S3Blobs {
    // The client inside knows the credentials: only say where blobs go.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Blobs")
            .field("location", &self.location.to_string())
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Blobs {
    /// Blobs at `location`, configured from the AWS variables and
    /// `settings`. Nothing is contacted yet ([`S3Blobs::check`] does).
    pub fn new(location: S3Location, settings: &S3Settings) -> Result<Self, S3Error> {
        // Client options first: setting them later would drop the ones the
        // environment gives (AWS_ALLOW_HTTP, proxies, ...).
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            // A large blob streams to a slow client for as long as it
            // takes; what must not happen is a stall.
            .with_timeout_disabled()
            .with_read_timeout(Duration::from_secs(60));
        let mut builder = AmazonS3Builder::new().with_client_options(client);
        // What AmazonS3Builder::from_env does, over those options.
        for (key, value) in std::env::vars_os() {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else { continue };
            if let Some(Ok(key)) =
                key.starts_with("AWS_").then(|| key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>())
            {
                builder = builder.with_config(key, value);
            }
        }
        builder = builder.with_bucket_name(&location.bucket);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        // Someone who names a plain-HTTP endpoint means it.
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        if endpoint.as_deref().is_some_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let endpoint = match endpoint {
            Some(endpoint) => without_userinfo(&endpoint),
            None => format!(
                "the AWS endpoint of region {}",
                builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into())
            ),
        };
        let store = builder
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            // Fail in seconds, not minutes, when the bucket is unreachable:
            // the caller reports it and serves what it can meanwhile.
            .with_retry(RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(15), ..Default::default() })
            .build()
            .map_err(|e| request_error("configure", None, e))?;
        Ok(Self::with_store(Arc::new(store), location, endpoint))
    }

    fn with_store(store: Arc<dyn ObjectStore>, location: S3Location, endpoint: String) -> Self {
        let root = Path::from_iter(location.prefix.split('/').filter(|p| !p.is_empty()).chain(["blobs", "sha256"]));
        Self { store, location, endpoint, root }
    }

    /// Where blobs go.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    fn key(&self, sha256: &Sha256) -> Path {
        let hex = sha256.to_hex();
        self.root.clone().join(&hex[0..2]).join(&hex[2..4]).join(hex.as_str())
    }

    /// Checks that the bucket answers (a listing of at most one key), so a
    /// wrong endpoint, bucket or key is reported at start-up.
    pub async fn check(&self) -> Result<(), S3Error> {
        match self.store.list(Some(&self.root)).next().await {
            Some(Err(source)) => Err(S3Error::Unreachable {
                location: self.location.clone(),
                endpoint: self.endpoint.clone(),
                source: Box::new(source),
            }),
            _ => Ok(()),
        }
    }

    /// The size of a stored blob, `None` when it is not stored.
    pub async fn size(&self, sha256: &Sha256) -> Result<Option<u64>, S3Error> {
        Ok(self.head(sha256).await?.map(|stat| stat.info.size))
    }

    async fn head(&self, sha256: &Sha256) -> Result<Option<BlobStat>, S3Error> {
        match self.store.head(&self.key(sha256)).await {
            Ok(meta) => Ok(Some(BlobStat {
                info: BlobInfo { sha256: *sha256, size: meta.size },
                modified: meta.last_modified.into(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(request_error("head", Some(sha256), error)),
        }
    }

    /// Streams `range` of a stored blob (the caller knows its size:
    /// [`S3Blobs::size`]); `None` when it is not stored (any more).
    pub async fn stream(&self, sha256: &Sha256, range: Range<u64>) -> Result<Option<ByteStream>, S3Error> {
        // S3 refuses an empty range; there is nothing to fetch anyway.
        if range.is_empty() {
            return Ok(Some(futures_util::stream::empty().boxed()));
        }
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
        match self.store.get_opts(&self.key(sha256), options).await {
            Ok(result) => Ok(Some(result.into_stream().map_err(io::Error::other).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(request_error("get", Some(sha256), error)),
        }
    }

    /// Publishes the local file at `path` as the blob `sha256`, but only if
    /// it hashes to that: see the module documentation. Returns its size.
    pub async fn publish_file(&self, sha256: &Sha256, path: &FsPath) -> Result<u64, S3Error> {
        let io = |source| S3Error::Io { path: path.to_owned(), source };
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        if self.size(sha256).await? == Some(size) {
            return Ok(size);
        }
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), self.key(sha256), PART_SIZE)
            .with_max_concurrency(UPLOAD_CONCURRENCY);
        let mut hasher = Hasher::default();
        let mut buffer = vec![0; READ_CHUNK];
        let copied: Result<(), S3Error> = async {
            loop {
                let read = file.read(&mut buffer).await.map_err(io)?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                writer.write_all(&buffer[..read]).await.map_err(|e| upload_error(sha256, e))?;
            }
            let actual = hasher.finish();
            if actual != *sha256 {
                return Err(S3Error::HashMismatch { expected: *sha256, actual });
            }
            // Completes the upload: the object appears, whole.
            writer.shutdown().await.map_err(|e| upload_error(sha256, e))
        }
        .await;
        if let Err(error) = copied {
            let _ = writer.abort().await;
            return Err(error);
        }
        Ok(size)
    }

    /// The error a caller of the blob trait sees.
    fn blob_error(&self, error: S3Error) -> BlobError {
        match error {
            S3Error::HashMismatch { expected, actual } => BlobError::HashMismatch { expected, actual },
            S3Error::Io { path, source } => BlobError::Io { path, source },
            error => BlobError::Backend { store: self.location.to_string(), source: Box::new(error) },
        }
    }
}

#[async_trait::async_trait]
impl BlobBackend for S3Blobs {
    async fn stat(&self, sha256: &Sha256) -> Result<Option<BlobStat>, BlobError> {
        self.head(sha256).await.map_err(|e| self.blob_error(e))
    }

    /// A HEAD for the size; the bytes are fetched when the handle is
    /// streamed (a ranged GET for a range).
    async fn open(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, BlobError> {
        let Some(stat) = self.stat(sha256).await? else { return Ok(None) };
        Ok(Some(BlobHandle::from_remote(stat.info, Box::new(S3Object { blobs: self.clone(), sha256: *sha256 }))))
    }

    async fn publish(&self, blob: StagedBlob) -> Result<(), BlobError> {
        self.publish_file(&blob.info().sha256, blob.path()).await.map_err(|e| self.blob_error(e))?;
        Ok(())
    }

    /// Several uploads at once; each is complete (durable and visible) when
    /// its request returns.
    async fn publish_batch(&self, blobs: Vec<StagedBlob>) -> Result<(), BlobError> {
        futures_util::stream::iter(blobs.into_iter().map(|blob| self.publish(blob)))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn remove(&self, sha256: &Sha256) -> Result<(), BlobError> {
        match self.store.delete(&self.key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.blob_error(request_error("delete", Some(sha256), error))),
        }
    }

    /// Objects under the prefix not named like a blob are skipped.
    async fn list(&self) -> Result<Vec<BlobStat>, BlobError> {
        let objects: Vec<_> = self
            .store
            .list(Some(&self.root))
            .try_collect()
            .await
            .map_err(|e| self.blob_error(request_error("list", None, e)))?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let sha256: Sha256 = meta.location.filename()?.parse().ok()?;
                (meta.location == self.key(&sha256)).then(|| BlobStat {
                    info: BlobInfo { sha256, size: meta.size },
                    modified: meta.last_modified.into(),
                })
            })
            .collect())
    }
}

/// A stored object, read by its [`BlobHandle`].
#[derive(Debug)]
struct S3Object {
    blobs: S3Blobs,
    sha256: Sha256,
}

#[async_trait::async_trait]
impl RemoteBlob for S3Object {
    async fn stream(&self, range: Range<u64>) -> Result<ByteStream, BlobError> {
        match self.blobs.stream(&self.sha256, range).await {
            Ok(Some(stream)) => Ok(stream),
            Ok(None) => Err(BlobError::Gone(self.sha256)),
            Err(error) => Err(self.blobs.blob_error(error)),
        }
    }
}

/// A URL (`endpoint`) without any `user:password@` in it.
fn without_userinfo(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|authority| authority.rsplit_once('@')) {
            Some((_, host)) => format!("{scheme}://{host}{}", &rest[rest.find('/').unwrap_or(rest.len())..]),
            None => endpoint.to_owned(),
        },
        None => endpoint.to_owned(),
    }
}

/// The object store's error inside an upload's I/O error, or a generic one.
fn upload_error(sha256: &Sha256, error: io::Error) -> S3Error {
    let source = match error.into_inner().map(|inner| inner.downcast::<object_store::Error>()) {
        Some(Ok(store_error)) => *store_error,
        Some(Err(other)) => object_store::Error::Generic { store: "S3", source: other },
        None => object_store::Error::Generic { store: "S3", source: "upload failed".into() },
    };
    request_error("put", Some(sha256), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        let location: S3Location = "s3://bucket/some/prefix/".parse().unwrap();
        assert_eq!((location.bucket(), location.prefix()), ("bucket", "some/prefix"));
        assert_eq!(location.to_string(), "s3://bucket/some/prefix");
        let bare: S3Location = "s3://bucket".parse().unwrap();
        assert_eq!((bare.bucket(), bare.prefix()), ("bucket", ""));
        for bad in ["bucket/prefix", "s3:///prefix", "s3://b/a/../c", "s3://b/a//c", "s3://b/p?x=1", "file:///x"] {
            assert!(bad.parse::<S3Location>().is_err(), "{bad} was accepted");
        }
        let err = "s3://GKkey:very-secret@bucket/p".parse::<S3Location>().unwrap_err().to_string();
        assert!(!err.contains("very-secret") && err.contains("credentials"), "{err}");
    }

    #[test]
    fn keys_follow_the_filesystem_layout_under_the_prefix() {
        let blobs = S3Blobs::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            "s3://b/team/l".parse().unwrap(),
            "mem".into(),
        );
        let sha256 = Sha256::of(b"hello");
        let hex = sha256.to_hex();
        assert_eq!(blobs.key(&sha256).as_ref(), format!("team/l/blobs/sha256/{}/{}/{hex}", &hex[..2], &hex[2..4]));
        let bare = S3Blobs::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            "s3://b".parse().unwrap(),
            "mem".into(),
        );
        assert!(bare.key(&sha256).as_ref().starts_with("blobs/sha256/"));
    }

    #[tokio::test]
    async fn a_file_that_does_not_hash_to_its_name_is_never_published() {
        let blobs = S3Blobs::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            "s3://b/p".parse().unwrap(),
            "mem".into(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staged");
        std::fs::write(&path, b"truncated").unwrap();
        let expected = Sha256::of(b"truncated body");
        let err = blobs.publish_file(&expected, &path).await.unwrap_err();
        assert!(matches!(err, S3Error::HashMismatch { .. }), "{err}");
        assert_eq!(blobs.size(&expected).await.unwrap(), None);
        assert!(blobs.list().await.unwrap().is_empty());
    }

    #[test]
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(without_userinfo("http://user:secret@host:9000/x"), "http://host:9000/x");
        assert_eq!(without_userinfo("http://host:9000"), "http://host:9000");
    }

    #[test]
    fn secrets_are_never_printed() {
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("garage".into()),
            access_key_id: Some("GKkey".into()),
            secret_access_key: Some("very-secret-value".into()),
        };
        assert!(!format!("{settings:?}").contains("very-secret-value"));
        let blobs = S3Blobs::new("s3://bucket/prefix".parse().unwrap(), &settings).unwrap();
        let printed = format!("{blobs:?}");
        assert!(printed.contains("s3://bucket/prefix") && !printed.contains("very-secret-value"), "{printed}");
    }
}
