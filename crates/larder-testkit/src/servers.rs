//! The real PostgreSQL and S3-compatible servers that `scripts/test`
//! starts for the shared-backend tests, and a fresh place in each per test.
//!
//! `scripts/test` (see `scripts/test-servers.sh`) starts PostgreSQL and
//! Garage on 127.0.0.1 and exports where they are (`LARDER_TEST_POSTGRES_URL`,
//! `LARDER_TEST_S3_*`). A test that needs them and finds a variable unset
//! fails (it is never skipped) with a message saying to run `scripts/test`.
//!
//! - [`TestDatabase::create`]: a new, empty database on the test server,
//!   dropped when the guard is.
//! - [`TestS3::from_env`] and [`TestS3::fresh_prefix`]: the test bucket and
//!   a prefix in it no other test uses, as an `s3://BUCKET/PREFIX` URL, with
//!   the usual AWS variables that point a larder process at the server.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use url::Url;

/// The variable naming the test PostgreSQL server (a URL whose user may
/// create databases).
pub const POSTGRES_URL_VAR: &str = "LARDER_TEST_POSTGRES_URL";

fn missing(var: &str) -> ! {
    panic!(
        "run scripts/test ({var} not set): scripts/test starts PostgreSQL and an S3 server on 127.0.0.1 and \
         exports where they are; to run some tests only, pass cargo test's arguments through it, e.g. \
         scripts/test -p larder-testkit --test servers"
    )
}

fn env_var(var: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| missing(var))
}

/// A name no other test of this run (nor of an earlier run on the same
/// server) has: `<label>-<pid>-<sequence>-<time>`, in lower case.
fn unique_name(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{}-{}-{nanos:x}", label.to_lowercase(), std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A database of its own for one test on the server named by
/// `LARDER_TEST_POSTGRES_URL`; dropped (with any connection still open to
/// it) when the guard is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    server: Url,
    name: String,
    url: Url,
}

impl TestDatabase {
    /// Creates an empty database named after `label` (letters, digits and
    /// `_`) plus a unique suffix.
    pub fn create(label: &str) -> TestDatabase {
        let server: Url = env_var(POSTGRES_URL_VAR).parse().expect("LARDER_TEST_POSTGRES_URL is a URL");
        let name = format!("larder_{}", unique_name(label).replace('-', "_"));
        let mut url = server.clone();
        url.set_path(&name);
        psql(&server, &format!("CREATE DATABASE \"{name}\""));
        TestDatabase { server, name, url }
    }

    /// The database's URL (`postgres://USER@HOST:PORT/NAME`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL in the database with `psql` and returns what it printed
    /// (unaligned, tuples only: one row a line, columns joined by `|`);
    /// panics when psql fails.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Not psql(): a failure here must not panic during a panic.
        let _ = psql_command(&self.server, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).output();
    }
}

fn psql_command(url: &Url, sql: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg("--no-psqlrc")
        .arg("--quiet")
        .arg("--tuples-only")
        .arg("--no-align")
        .args(["--set", "ON_ERROR_STOP=1"])
        .args(["--dbname", url.as_str()])
        .args(["--command", sql])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    cmd
}

fn psql(url: &Url, sql: &str) -> String {
    let output = psql_command(url, sql).output().expect("run psql (Debian's postgresql-client)");
    assert!(output.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("psql prints UTF-8")
}

/// The test S3 server and bucket named by the `LARDER_TEST_S3_*` variables.
#[derive(Clone, Debug)]
pub struct TestS3 {
    /// The endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: Url,
    /// The region the server answers for.
    pub region: String,
    /// The bucket the tests share (each under a prefix of its own).
    pub bucket: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl TestS3 {
    /// Reads the server's coordinates; panics when any is unset.
    pub fn from_env() -> TestS3 {
        TestS3 {
            endpoint: env_var("LARDER_TEST_S3_ENDPOINT").parse().expect("LARDER_TEST_S3_ENDPOINT is a URL"),
            region: env_var("LARDER_TEST_S3_REGION"),
            bucket: env_var("LARDER_TEST_S3_BUCKET"),
            access_key_id: env_var("LARDER_TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: env_var("LARDER_TEST_S3_SECRET_ACCESS_KEY"),
        }
    }

    /// A prefix of the bucket that no other test uses, as the URL
    /// `s3://BUCKET/<label>-<unique>` (no trailing slash).
    pub fn fresh_prefix(&self, label: &str) -> Url {
        format!("s3://{}/{}", self.bucket, unique_name(label)).parse().expect("an s3 URL")
    }

    /// A client of the bucket (object_store's), to look at objects directly.
    pub fn client(&self) -> impl object_store::ObjectStore {
        let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(&self.bucket);
        for (key, value) in self.aws_env() {
            builder = builder.with_config(key.to_ascii_lowercase().parse().expect("an AWS key"), value);
        }
        builder.build().expect("an S3 client for the test server")
    }

    /// The keys of every object under the prefix of `url` (an
    /// `s3://BUCKET/PREFIX` of [`TestS3::fresh_prefix`]), relative to it
    /// and sorted (`blobs/sha256/aa/bb/<hex>`, ...). Blocking.
    pub fn keys(&self, url: &Url) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let prefix = url.path().trim_matches('/').to_owned();
        let client = self.client();
        let objects: Vec<_> = block_on(client.list(Some(&prefix.as_str().into())).try_collect())
            .unwrap_or_else(|e| panic!("cannot list {url}: {e}"));
        let mut keys: Vec<String> = objects
            .into_iter()
            .map(|meta| meta.location.as_ref().strip_prefix(&format!("{prefix}/")).unwrap_or_default().to_owned())
            .collect();
        keys.sort();
        keys
    }

    /// The bytes of the object `key` (relative to the prefix of `url`).
    /// Blocking.
    pub fn get(&self, url: &Url, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let path = format!("{}/{key}", url.path().trim_matches('/'));
        let client = self.client();
        block_on(async { client.get(&path.as_str().into()).await?.bytes().await })
            .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
            .to_vec()
    }

    /// Deletes the object `key` (relative to the prefix of `url`). Blocking.
    pub fn delete(&self, url: &Url, key: &str) {
        use object_store::ObjectStoreExt;
        let path = format!("{}/{key}", url.path().trim_matches('/'));
        block_on(self.client().delete(&path.as_str().into())).unwrap_or_else(|e| panic!("cannot delete {path}: {e}"));
    }

    /// Writes `bytes` as the object `key` (relative to the prefix of `url`),
    /// replacing what is there: damage done behind larder's back. Blocking.
    pub fn put(&self, url: &Url, key: &str, bytes: &[u8]) {
        use object_store::ObjectStoreExt;
        let path = format!("{}/{key}", url.path().trim_matches('/'));
        block_on(self.client().put(&path.as_str().into(), bytes.to_vec().into()))
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }

    /// The usual AWS variables that point a process at this server
    /// (endpoint, region, credentials, plain HTTP allowed), for
    /// `Command::envs` or [`crate::Larder::serve_with_env`].
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.as_str().trim_end_matches('/').to_owned()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

/// Runs `future` to completion on a runtime of its own (the test helpers
/// here are called from plain threads).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_the_label() {
        let (a, b) = (unique_name("Blob"), unique_name("Blob"));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("blob-{}-", std::process::id())), "{a}");
    }
}
