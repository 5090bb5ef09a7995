//! S3 blobs against the real S3 server that `scripts/test` starts (Garage
//! on 127.0.0.1), each test under a prefix of its own.

use futures_util::StreamExt;
use larder_index::{Hasher, Sha256};
use std::sync::Arc;

use larder_store::{BlobBackend, BlobError, Blobs, S3Blobs, S3Error, S3Location, S3Settings};
use larder_testkit::TestS3;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};

fn settings(s3: &TestS3) -> S3Settings {
    S3Settings {
        endpoint: Some(s3.endpoint.as_str().trim_end_matches('/').to_owned()),
        region: Some(s3.region.clone()),
        access_key_id: Some(s3.access_key_id.clone()),
        secret_access_key: Some(s3.secret_access_key.clone().into()),
    }
}

/// A fresh prefix, blobs on it, and a directory for local files.
struct Fixture {
    s3: TestS3,
    location: S3Location,
    blobs: S3Blobs,
    dir: tempfile::TempDir,
}

fn fixture(label: &str) -> Fixture {
    let s3 = TestS3::from_env();
    let location: S3Location = s3.fresh_prefix(label).as_str().parse().unwrap();
    let blobs = S3Blobs::new(location.clone(), &settings(&s3)).unwrap();
    Fixture { s3, location, blobs, dir: tempfile::tempdir().unwrap() }
}

impl Fixture {
    /// A plain client on the bucket, to look at the objects themselves.
    fn raw_client(&self) -> impl ObjectStore {
        let mut builder = AmazonS3Builder::new().with_bucket_name(&self.s3.bucket);
        for (key, value) in self.s3.aws_env() {
            builder = builder.with_config(key.to_ascii_lowercase().parse().unwrap(), value);
        }
        builder.build().unwrap()
    }

    fn key(&self, sha256: &Sha256) -> object_store::path::Path {
        let hex = sha256.to_hex();
        format!("{}/blobs/sha256/{}/{}/{hex}", self.location.prefix(), &hex[..2], &hex[2..4]).into()
    }

    /// Publishes `bytes` through a local file.
    async fn publish(&self, bytes: &[u8]) -> Sha256 {
        let sha256 = Sha256::of(bytes);
        let path = self.dir.path().join(sha256.to_hex());
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(self.blobs.publish_file(&sha256, &path).await.unwrap(), bytes.len() as u64);
        sha256
    }

    async fn read(&self, sha256: &Sha256, range: std::ops::Range<u64>) -> Vec<u8> {
        let stream = self.blobs.stream(sha256, range).await.unwrap().expect("stored");
        stream.map(|chunk| chunk.unwrap().to_vec()).concat().await
    }
}

/// Some bytes that are not all alike.
fn content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn a_blob_is_stored_under_its_digest_and_read_back_whole_or_in_ranges() {
    let f = fixture("s3-roundtrip");
    let bytes = content(100_000);
    assert_eq!(f.blobs.size(&Sha256::of(&bytes)).await.unwrap(), None);
    assert!(f.blobs.stream(&Sha256::of(&bytes), 0..10).await.unwrap().is_none());

    let sha256 = f.publish(&bytes).await;
    assert_eq!(f.raw_client().head(&f.key(&sha256)).await.unwrap().size, 100_000, "the object is at its key");
    assert_eq!(f.blobs.size(&sha256).await.unwrap(), Some(100_000));
    assert_eq!(f.read(&sha256, 0..100_000).await, bytes);
    assert_eq!(f.read(&sha256, 1000..1010).await, bytes[1000..1010]);
    assert_eq!(f.read(&sha256, 5..5).await, b"");

    let listed = f.blobs.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].info.sha256, listed[0].info.size), (sha256, 100_000));

    // Publishing the same content again is harmless.
    assert_eq!(f.publish(&bytes).await, sha256);
    f.blobs.remove(&sha256).await.unwrap();
    assert_eq!(f.blobs.size(&sha256).await.unwrap(), None);
    f.blobs.remove(&sha256).await.unwrap();
    assert!(f.blobs.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_file_whose_hash_does_not_check_out_is_never_uploaded_small_or_large() {
    let f = fixture("s3-mismatch");
    for size in [9, 17 * 1024 * 1024] {
        let path = f.dir.path().join("damaged");
        std::fs::write(&path, content(size)).unwrap();
        let claimed = Sha256::of(b"what the upstream said");
        let err = f.blobs.publish_file(&claimed, &path).await.unwrap_err();
        assert!(matches!(err, S3Error::HashMismatch { .. }), "{err}");
        assert_eq!(f.blobs.size(&claimed).await.unwrap(), None);
    }
    assert!(f.blobs.list().await.unwrap().is_empty(), "nothing at all was published");
}

#[tokio::test]
async fn a_large_blob_goes_up_in_parts_and_streams_back_in_chunks() {
    let f = fixture("s3-large");
    let bytes = content(17 * 1024 * 1024 + 5);
    let sha256 = f.publish(&bytes).await;

    // A multipart object's ETag ends in the number of parts.
    let meta = f.raw_client().head(&f.key(&sha256)).await.unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    let etag = meta.e_tag.unwrap();
    assert!(etag.trim_matches('"').ends_with("-3"), "uploaded in 3 parts of 8 MiB: ETag {etag}");

    // Streamed back: hashed chunk by chunk, no chunk anywhere near whole.
    let mut stream = f.blobs.stream(&sha256, 0..bytes.len() as u64).await.unwrap().unwrap();
    let (mut hasher, mut largest, mut total) = (Hasher::default(), 0, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        hasher.update(&chunk);
        largest = largest.max(chunk.len());
        total += chunk.len();
    }
    assert_eq!((hasher.finish(), total), (sha256, bytes.len()));
    assert!(largest < 4 * 1024 * 1024, "largest chunk {largest} bytes");
    let end = bytes.len() as u64;
    assert_eq!(f.read(&sha256, end - 10..end).await, bytes[bytes.len() - 10..]);
}

#[tokio::test]
async fn a_blob_published_by_one_node_is_seen_by_another() {
    let f = fixture("s3-two-nodes");
    let other = S3Blobs::new(f.location.clone(), &settings(&f.s3)).unwrap();
    let sha256 = f.publish(b"shared").await;
    assert_eq!(other.size(&sha256).await.unwrap(), Some(6));
    let stream = other.stream(&sha256, 0..6).await.unwrap().unwrap();
    assert_eq!(stream.map(|c| c.unwrap().to_vec()).concat().await, b"shared");
    f.blobs.remove(&sha256).await.unwrap();
    assert!(other.stream(&sha256, 0..6).await.unwrap().is_none(), "gone for every node");
}

#[tokio::test]
async fn an_unreachable_or_refusing_server_is_a_clear_error_that_never_shows_the_secret() {
    let f = fixture("s3-faults");
    f.blobs.check().await.unwrap();

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut unreachable = settings(&f.s3);
    unreachable.endpoint = Some(format!("http://{closed}"));
    let blobs = S3Blobs::new(f.location.clone(), &unreachable).unwrap();
    let started = std::time::Instant::now();
    let err = blobs.check().await.unwrap_err();
    assert!(matches!(err, S3Error::Unreachable { .. }), "{err}");
    let message = err.to_string();
    for named in [f.location.to_string(), closed.to_string(), "AWS_ENDPOINT_URL".to_owned()] {
        assert!(message.contains(&named), "the error names {named}: {message}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "gave up after {:?}", started.elapsed());
    let err = blobs.size(&Sha256::of(b"x")).await.unwrap_err();
    assert!(matches!(err, S3Error::Request { operation: "head", .. }), "{err}");

    // The right server, the wrong secret.
    let mut wrong = settings(&f.s3);
    wrong.secret_access_key = Some("wrong-secret-0123456789abcdef".into());
    let blobs = S3Blobs::new(f.location.clone(), &wrong).unwrap();
    let err = blobs.check().await.unwrap_err();
    let shown = format!("{err} / {err:?} / {blobs:?}");
    for secret in ["wrong-secret-0123456789abcdef", f.s3.secret_access_key.as_str()] {
        assert!(!shown.contains(secret), "a secret is shown: {shown}");
    }
}

#[tokio::test]
async fn behind_the_blob_trait_blobs_are_staged_locally_published_verified_and_streamed() {
    let f = fixture("s3-trait");
    let staging = f.dir.path().join("tmp");
    let blobs = Blobs::new(Arc::new(f.blobs.clone()), &staging).unwrap();
    let bytes = content(300_000);
    let info = blobs.put_bytes(&bytes, Some(Sha256::of(&bytes))).await.unwrap();
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "nothing left staged");
    assert_eq!(f.raw_client().head(&f.key(&info.sha256)).await.unwrap().size, 300_000);

    let handle = blobs.open(&info.sha256).await.unwrap().expect("stored");
    assert_eq!(handle.size(), 300_000);
    assert!(handle.local_file().is_none(), "streamed, not a local file");
    let ranged = handle.stream(1000..1100).await.unwrap().map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(ranged, bytes[1000..1100]);
    let file = blobs.open(&info.sha256).await.unwrap().unwrap().into_file().await.unwrap();
    assert_eq!(file.metadata().unwrap().len(), 300_000);
    assert_eq!(blobs.read(&info.sha256).await.unwrap().unwrap(), bytes);
    assert!(blobs.stat(&info.sha256).await.unwrap().unwrap().modified <= std::time::SystemTime::now());

    // A mismatch publishes nothing; a batch publishes all.
    let err = blobs.put_bytes(b"other", Some(Sha256::of(b"claimed"))).await.unwrap_err();
    assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
    let mut batch = Vec::new();
    for content in [&b"one"[..], b"two", b"three"] {
        let mut writer = blobs.writer().unwrap();
        writer.write(content).await.unwrap();
        batch.push(writer.finish(Some(Sha256::of(content))).unwrap());
    }
    larder_store::publish_batch(batch).await.unwrap();
    assert_eq!(blobs.list().await.unwrap().len(), 4);
    assert_eq!(blobs.read(&Sha256::of(b"three")).await.unwrap().unwrap(), b"three");

    // Removed: gone for new readers; a handle opened before reports it.
    let handle = blobs.open(&info.sha256).await.unwrap().unwrap();
    blobs.remove(&info.sha256).await.unwrap();
    assert!(blobs.open(&info.sha256).await.unwrap().is_none());
    assert!(!blobs.contains(&info.sha256).await);
    assert!(matches!(handle.stream(0..10).await, Err(BlobError::Gone(_))));
}

#[tokio::test]
async fn a_bucket_that_stops_answering_is_an_unavailable_store_not_a_missing_blob() {
    let f = fixture("s3-down");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut down = settings(&f.s3);
    down.endpoint = Some(format!("http://{closed}"));
    let blobs = Blobs::new(Arc::new(S3Blobs::new(f.location.clone(), &down).unwrap()), f.dir.path()).unwrap();
    let err = blobs.open(&Sha256::of(b"x")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains(&f.location.to_string()), "{err}");
    let err = blobs.put_bytes(b"x", None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

/// Blobs read through a local disk cache of `capacity` bytes in `dir`.
fn cached(f: &Fixture, dir: &std::path::Path, capacity: u64) -> Blobs {
    let backend = larder_store::CachedBackend::open(Arc::new(f.blobs.clone()), dir, capacity).unwrap();
    Blobs::new(Arc::new(backend), &f.dir.path().join("staging")).unwrap()
}

fn cache_path(dir: &std::path::Path, sha256: &Sha256) -> std::path::PathBuf {
    let hex = sha256.to_hex();
    dir.join("sha256").join(&hex[..2]).join(&hex[2..4]).join(&hex)
}

/// Opens the blob until it is served from a local file (the background
/// copy into the cache done); panics after 10 s.
async fn wait_until_cached(blobs: &Blobs, sha256: &Sha256) -> std::fs::File {
    for _ in 0..500 {
        if let Ok(file) = blobs.open(sha256).await.unwrap().expect("stored").into_local_file() {
            return file;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{sha256} never reached the local cache");
}

#[tokio::test]
async fn the_disk_cache_keeps_hot_blobs_local_and_evicts_the_least_recently_used() {
    let f = fixture("s3-cache");
    let cache_dir = f.dir.path().join("cache");
    let blobs = cached(&f, &cache_dir, 250_000);
    let contents: Vec<Vec<u8>> = (0..3).map(|i| content(100_000 + i)).collect();
    let mut digests = Vec::new();
    for bytes in &contents {
        digests.push(f.publish(bytes).await); // by another node: not cached here
    }
    let [a, b, c] = [digests[0], digests[1], digests[2]];

    // A miss is streamed from the bucket, and copied in meanwhile.
    let first = blobs.open(&a).await.unwrap().unwrap();
    assert!(first.local_file().is_none(), "a miss is streamed");
    assert_eq!(first.read_all().await.unwrap(), contents[0]);
    wait_until_cached(&blobs, &a).await;
    wait_until_cached(&blobs, &b).await;
    wait_until_cached(&blobs, &a).await; // a used again: b is now the oldest
    wait_until_cached(&blobs, &c).await;
    assert!(!cache_path(&cache_dir, &b).exists(), "b, least recently used, was evicted");
    assert!(cache_path(&cache_dir, &a).exists() && cache_path(&cache_dir, &c).exists());

    // A hit never goes to the bucket: served with the object gone.
    f.raw_client().delete(&f.key(&a)).await.unwrap();
    let hit = blobs.open(&a).await.unwrap().expect("served from the cache");
    assert!(hit.local_file().is_some());
    assert_eq!(hit.read_all().await.unwrap(), contents[0]);

    // Removing through the store removes the cached copy too.
    blobs.remove(&c).await.unwrap();
    assert!(!cache_path(&cache_dir, &c).exists());
    assert!(blobs.open(&c).await.unwrap().is_none());

    // Published here: in the cache at once. Too large for it: never.
    let info = blobs.put_bytes(&content(1000), None).await.unwrap();
    assert!(blobs.open(&info.sha256).await.unwrap().unwrap().local_file().is_some());
    let large = blobs.put_bytes(&content(300_000), None).await.unwrap();
    let _ = blobs.open(&large.sha256).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!cache_path(&cache_dir, &large.sha256).exists(), "larger than the whole cache");

    // Reopened: what is cached is found again and kept within the cap.
    drop(blobs);
    let small = cached(&f, &cache_dir, 1500);
    assert!(small.open(&info.sha256).await.unwrap().unwrap().local_file().is_some());
    assert!(!cache_path(&cache_dir, &a).exists(), "evicted to fit the smaller cap at start-up");
}

#[tokio::test]
async fn only_whole_verified_blobs_enter_the_cache_and_crash_leftovers_are_cleared() {
    let f = fixture("s3-cache-verified");
    let cache_dir = f.dir.path().join("cache");
    // Damaged in the bucket: the object under a digest has other bytes.
    let claimed = Sha256::of(b"the real content");
    f.raw_client().put(&f.key(&claimed), b"damaged content!".to_vec().into()).await.unwrap();
    // A temporary file a crash left, long ago.
    std::fs::create_dir_all(cache_dir.join("tmp")).unwrap();
    let leftover = cache_dir.join("tmp").join("fill-crashed");
    let file = std::fs::File::create(&leftover).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200)).unwrap();
    drop(file);

    let blobs = cached(&f, &cache_dir, 1 << 20);
    assert!(!leftover.exists(), "crash leftovers are removed at start-up");
    for _ in 0..5 {
        let handle = blobs.open(&claimed).await.unwrap().unwrap();
        assert!(handle.local_file().is_none(), "never served from the cache");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!cache_path(&cache_dir, &claimed).exists());
    assert_eq!(std::fs::read_dir(cache_dir.join("tmp")).unwrap().count(), 0, "the failed copy left nothing");
}
