//! Test support: every database test runs once per backend, SQLite in a
//! temporary directory and PostgreSQL in a fresh database of the test
//! server (`LARDER_TEST_POSTGRES_URL`, started by `scripts/test`).

use larder_testkit::servers::TestDatabase;

use super::{Database, DatabaseLocation};

/// A backend to run a test on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// An empty database of one backend, and what keeps it alive.
pub(crate) struct TestDb {
    /// Where it is.
    pub location: DatabaseLocation,
    _dir: tempfile::TempDir,
    _server: Option<TestDatabase>,
}

impl TestDb {
    /// A new, empty (not yet migrated) database.
    pub fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => TestDb { location: DatabaseLocation::in_data_dir(dir.path()), _dir: dir, _server: None },
            Backend::Postgres => {
                let server = TestDatabase::create("store");
                let location = server.url().as_str().parse().unwrap();
                TestDb { location, _dir: dir, _server: Some(server) }
            }
        }
    }

    /// Opens (and migrates) it; may be called again for another handle.
    pub async fn open(&self) -> Database {
        Database::connect(&self.location).await.unwrap()
    }
}

/// Defines `async fn NAME(backend: Backend)` as a test module `NAME` with
/// one test per backend (`NAME::sqlite`, `NAME::postgres`).
macro_rules! each_backend {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::db::testing::Backend;

            async fn run($backend: Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await
            }
        }
    };
}

pub(crate) use each_backend;
