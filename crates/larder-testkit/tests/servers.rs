//! The test servers that `scripts/test` starts work on their own: the
//! PostgreSQL server gives each test a database of its own that holds a
//! table, the S3 server stores and returns objects under a test's prefix.

use larder_testkit::{TestDatabase, TestS3};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[test]
fn each_test_gets_a_database_of_its_own_that_is_dropped_afterwards() {
    let first = TestDatabase::create("servers");
    let second = TestDatabase::create("servers");
    assert_ne!(first.name(), second.name());
    first.query("CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL)");
    first.query("INSERT INTO blobs VALUES ('ab', 5), ('cd', 7)");
    assert_eq!(first.query("SELECT sum(size) FROM blobs").trim(), "12");
    // The other database does not see the table.
    assert_eq!(second.query("SELECT count(*) FROM pg_tables WHERE tablename = 'blobs'").trim(), "0");

    let name = first.name().to_owned();
    drop(first);
    let listed = second.query(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"));
    assert_eq!(listed.trim(), "0", "the database of a finished test is dropped");
}

#[tokio::test]
async fn the_s3_server_stores_and_returns_objects_under_a_fresh_prefix() {
    let s3 = TestS3::from_env();
    let prefix = s3.fresh_prefix("servers");
    assert_eq!(prefix.scheme(), "s3");
    assert_eq!(prefix.host_str(), Some(s3.bucket.as_str()));
    assert_ne!(prefix, s3.fresh_prefix("servers"));

    let mut builder = AmazonS3Builder::new().with_bucket_name(&s3.bucket);
    for (key, value) in s3.aws_env() {
        builder = builder.with_config(key.to_ascii_lowercase().parse().expect("an AWS config key"), value);
    }
    let store = builder.build().expect("an S3 client");
    let key = Path::from(format!("{}/hello.txt", prefix.path().trim_start_matches('/')));

    store.put(&key, PutPayload::from_static(b"hello, bucket")).await.expect("put an object");
    let got = store.get(&key).await.expect("get the object").bytes().await.expect("read the object");
    assert_eq!(&got[..], b"hello, bucket");
    let listed: Vec<_> = {
        use futures_util::TryStreamExt;
        store.list(Some(&Path::from(prefix.path().trim_start_matches('/')))).try_collect().await.expect("list")
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].location, key);
    assert_eq!(listed[0].size, 13);

    store.delete(&key).await.expect("delete the object");
    assert!(matches!(store.head(&key).await, Err(object_store::Error::NotFound { .. })));
}
