//! The metadata database: projects, files and the change journal, in an
//! embedded SQLite database (WAL mode, so several larder processes can share
//! one data dir: readers never block; a process's writers take turns on an
//! async lock, and writers of different processes queue on a busy timeout).

use std::io::ErrorKind;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use larder_index::{NormalizedName, UploadTime};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use backend::{DbRow, Pool, on_conn, on_pool, on_tx};
pub use location::{DatabaseLocation, DatabaseUrlError, SQLITE_FILE};
use write::WriteTx;

pub use larder_index::FileRecord;
use larder_index::Sha256;

/// The index that holds what the proxy learned from the upstreams.
pub const UPSTREAM_INDEX: &str = "upstream";

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database reported an error (or could not be reached).
    #[error("metadata database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The database server could not be reached at start-up.
    #[error(
        "cannot connect to the metadata database {database}: {source} (check that the server is running and \
         reachable from here, and the URL's host, port, user, password and database name)"
    )]
    Connect {
        /// Where it is (password hidden).
        database: String,
        /// What went wrong.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("metadata database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The migration lock file could not be taken.
    #[error("cannot lock {path} for the schema migration: {source}")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The metadata cannot be copied into that database.
    #[error("cannot copy the metadata: {0}")]
    Copy(String),
    /// A row holds a value this version of larder cannot read.
    #[error("metadata database holds an unreadable value in {0}")]
    Corrupt(&'static str),
    /// A filename is already published with other content.
    #[error(
        "{filename} already exists in index {index} with different content (sha256 {existing}); a published file never changes: publish a new version or add a build tag"
    )]
    FileConflict {
        /// The index.
        index: String,
        /// The filename.
        filename: String,
        /// The digest of the file already published.
        existing: Sha256,
    },
}

impl DbError {
    /// Whether the database could not be reached (down, restarting, cut
    /// off, or every connection busy for too long): the same request may
    /// succeed once it is back.
    pub fn is_unavailable(&self) -> bool {
        let sql = match self {
            DbError::Connect { .. } => return true,
            DbError::Sql(sql) => sql,
            _ => return false,
        };
        match sql {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL's connection exceptions (08...) and shutdowns
            // (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
            // connect now).
            sqlx::Error::Database(error) => {
                error.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
            }
            _ => false,
        }
    }

    /// Whether the database could not write because its disk is full
    /// (SQLite's SQLITE_FULL, PostgreSQL's disk_full, or the file system's
    /// ENOSPC / EDQUOT under either): the same request may succeed once
    /// space is freed.
    pub fn is_disk_full(&self) -> bool {
        let (DbError::Sql(sql) | DbError::Connect { source: sql, .. }) = self else { return false };
        match sql {
            sqlx::Error::Database(error) => error.code().is_some_and(|code| code == "13" || code == "53100"),
            sqlx::Error::Io(error) => matches!(error.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded),
            _ => false,
        }
    }
}

/// A file to publish in an index.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// The project, normalized.
    pub project: NormalizedName,
    /// The project name as its metadata spells it.
    pub display_name: String,
    /// The distribution filename.
    pub filename: String,
    /// The version, as in the filename.
    pub version: String,
    /// Digest of the file.
    pub sha256: Sha256,
    /// Size in bytes.
    pub size: u64,
    /// When it was published.
    pub upload_time: Timestamp,
    /// `Requires-Python` from its metadata.
    pub requires_python: Option<String>,
    /// Digest of its core metadata blob, when one was extracted.
    pub metadata_sha256: Option<Sha256>,
    /// Whether the metadata is advertised on pages (PEP 658): wheels only,
    /// since an sdist's PKG-INFO may be incomplete.
    pub serve_metadata: bool,
}

/// What publishing one file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The file is new.
    Added,
    /// The same file (same name, same digest) was already there.
    AlreadyPresent,
}

/// A project and its files.
#[derive(Clone, Debug)]
pub struct ProjectRecord {
    /// The name as the project spells it.
    pub display_name: String,
    /// The serial of the project's last change.
    pub serial: u64,
    /// Its files, sorted by filename.
    pub files: Vec<FileRecord>,
    /// Page-level fields an upstream gave (proxied projects only).
    pub upstream: Option<crate::db::proxied::UpstreamMeta>,
}

impl ProjectRecord {
    /// The serial clients see (`_last-serial`, `last_serial`,
    /// `X-PyPI-Last-Serial`): the upstream's for a proxied project that
    /// gave one, larder's own journal serial otherwise.
    pub fn last_serial(&self) -> u64 {
        self.upstream.as_ref().and_then(|upstream| upstream.last_serial).unwrap_or(self.serial)
    }
}

/// One row of an index's project list.
#[derive(Clone, Debug)]
pub struct ProjectSummary {
    /// The normalized name.
    pub name: NormalizedName,
    /// The name as the project spells it.
    pub display_name: String,
    /// The serial of its last change.
    pub serial: u64,
}

/// The columns [`file_record`] reads, as a literal for `concat!` (queries
/// must be static strings).
macro_rules! file_columns {
    () => {
        "filename, version, sha256, size, upload_time_micros, upload_time_text, requires_python, \
         metadata_sha256, serve_metadata, yanked, yanked_reason, gpg_sig, provenance, url"
    };
}

/// The head of an INSERT of whole file rows (`VALUES` follow), as a
/// literal for `concat!`; [`bind_file_row`] binds a row's values.
macro_rules! insert_into_files {
    () => {
        "INSERT INTO files (index_name, filename, project, version, sha256, size, upload_time_micros,
                            upload_time_text, requires_python, metadata_sha256, serve_metadata, yanked,
                            yanked_reason, gpg_sig, provenance, url)"
    };
}

/// An INSERT of a whole file row, as a literal for `concat!` (an `ON
/// CONFLICT` clause follows); [`bind_file_row`] binds its values.
macro_rules! insert_file_row {
    () => {
        concat!(insert_into_files!(), " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
    };
}

/// Binds the values of [`insert_file_row`] to `$query`: the file row of a
/// [`FileRecord`] in an index and project (what [`file_record`] reads back).
macro_rules! bind_file_row {
    ($query:expr, $index:expr, $project:expr, $file:expr) => {{
        let file: &FileRecord = $file;
        $query
            .bind($index)
            .bind(&file.filename)
            .bind($project)
            .bind(&file.version)
            .bind(file.sha256.to_hex())
            .bind(file.size.map(|s| s as i64))
            .bind(file.upload_time.as_ref().map(|t| t.timestamp().as_microsecond()))
            .bind(file.upload_time.as_ref().map(UploadTime::as_str))
            .bind(&file.requires_python)
            .bind(file.metadata_sha256.map(|d| d.to_hex()))
            .bind(file.serve_metadata)
            .bind(file.yanked.is_some())
            .bind(file.yanked.as_deref().filter(|r| !r.is_empty()))
            .bind(file.gpg_sig)
            .bind(&file.provenance)
            .bind(&file.url)
    }};
}

/// The metadata database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    write_turn: write::WriteTurn,
    pages: page_writes::PageQueue,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the connection options: they hold the password.
        let backend = match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        };
        f.debug_struct("Database").field("backend", &backend).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the database at `location`, creating (an SQLite file) and
    /// migrating it when needed. Several processes may open one database
    /// at once: they take turns for the migrations.
    pub async fn connect(location: &DatabaseLocation) -> Result<Self, DbError> {
        match location {
            DatabaseLocation::Sqlite(path) => Self::open(path).await,
            DatabaseLocation::Postgres(url) => Self::connect_postgres(location, url).await,
        }
    }

    /// Connects to a PostgreSQL database and migrates it. The migrator
    /// holds an advisory lock while it works, so nodes starting together
    /// migrate one after the other.
    async fn connect_postgres(location: &DatabaseLocation, url: &url::Url) -> Result<Self, DbError> {
        let unreachable = |source| DbError::Connect { database: location.to_string(), source };
        let options = PgConnectOptions::from_url(url).map_err(unreachable)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A request waits this long at most for a connection while the
            // server is away, then fails with a clear reason.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool: Pool::Postgres(pool), write_turn: Default::default(), pages: Default::default() })
    }

    /// Opens (creating and migrating when needed) the SQLite database file.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(60))
            .foreign_keys(true);
        // Creating the file, switching it to WAL and migrating it all need
        // the database to themselves: processes opening one data dir at
        // once take turns for that part, on an exclusive file lock.
        let lock = Self::setup_lock(&path.with_extension("migrate.lock")).await?;
        // Migrations run on a connection of their own: SQLite reads the
        // planner statistics (which a migration may set) when a connection
        // loads the schema, so the pool's connections open after them.
        let setup = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&setup).await?;
        setup.close().await;
        let conns = sqlite_conns::SqliteConns::open(options, 8).await?;
        drop(lock);
        Ok(Self { pool: Pool::Sqlite(conns), write_turn: Default::default(), pages: Default::default() })
    }

    /// Waits for and takes the exclusive lock on `lock_path`, released
    /// when the returned file is dropped.
    async fn setup_lock(lock_path: &Path) -> Result<std::fs::File, DbError> {
        let lock_error = |source| DbError::Lock { path: lock_path.to_owned(), source };
        let lock_file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path).map_err(lock_error)?;
        tokio::task::spawn_blocking(move || lock_file.lock().map(|()| lock_file))
            .await
            .expect("locking does not panic")
            .map_err(lock_error)
    }

    /// The serial of the newest change in any index (0 when empty).
    pub async fn last_serial(&self) -> Result<u64, DbError> {
        let serial: i64 = on_pool!(&self.pool, |pool| {
            sqlx::query_scalar("SELECT COALESCE(MAX(serial), 0) FROM journal").fetch_one(pool).await?
        });
        Ok(serial as u64)
    }

    /// The journal entries after `serial` (at most `limit`), oldest first,
    /// as `(serial, project)`.
    pub async fn changes_since(&self, serial: u64, limit: i64) -> Result<Vec<(u64, NormalizedName)>, DbError> {
        let rows: Vec<(i64, String)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT serial, project FROM journal WHERE serial > $1 ORDER BY serial LIMIT $2")
                .bind(serial as i64)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(serial, project)| {
                let project = NormalizedName::from_normalized(&project).ok_or(DbError::Corrupt("journal.project"))?;
                Ok((serial as u64, project))
            })
            .collect()
    }

    /// Publishes `files` in `index` in one transaction: either every file is
    /// published (or found already present, byte-identical), or none is.
    pub async fn add_files(&self, index: &str, files: &[NewFile]) -> Result<Vec<AddOutcome>, DbError> {
        let mut tx = self.write().await?;
        let mut outcomes = Vec::with_capacity(files.len());
        for file in files {
            if !insert_file(&mut tx, index, file, None).await? {
                let existing: String = on_tx!(tx, |conn| {
                    sqlx::query_scalar("SELECT sha256 FROM files WHERE index_name = $1 AND filename = $2")
                        .bind(index)
                        .bind(&file.filename)
                        .fetch_one(conn)
                        .await?
                });
                let existing = Sha256::from_str(&existing).map_err(|_| DbError::Corrupt("files.sha256"))?;
                if existing != file.sha256 {
                    return Err(DbError::FileConflict {
                        index: index.to_owned(),
                        filename: file.filename.clone(),
                        existing,
                    });
                }
                outcomes.push(AddOutcome::AlreadyPresent);
                continue;
            }
            let serial = journal(&mut tx, index, file.project.as_str(), &format!("add {}", file.filename)).await?;
            touch_project(&mut tx, index, file.project.as_str(), &file.display_name, serial).await?;
            outcomes.push(AddOutcome::Added);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Every project of `index`, sorted by normalized name.
    pub async fn projects(&self, index: &str) -> Result<Vec<ProjectSummary>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows =
                sqlx::query("SELECT name, display_name, serial FROM projects WHERE index_name = $1 ORDER BY name")
                    .bind(index)
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|row| {
                    Ok(ProjectSummary {
                        name: NormalizedName::from_normalized(row.col("name"))
                            .ok_or(DbError::Corrupt("projects.name"))?,
                        display_name: row.col("display_name"),
                        serial: row.col::<i64>("serial") as u64,
                    })
                })
                .collect()
        })
    }

    /// A project of `index` with its files, or `None` when it has none.
    /// Its rows are read on one connection taken from the pool once: the
    /// project with its page-level fields, then its files.
    pub async fn project(&self, index: &str, name: &NormalizedName) -> Result<Option<ProjectRecord>, DbError> {
        on_conn!(&self.pool, |conn| {
            let found = sqlx::query(proxied::PROJECT_WITH_META)
                .bind(index)
                .bind(name.as_str())
                .bind(UPSTREAM_INDEX)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(found) = found else {
                return Ok(None);
            };
            let upstream =
                if found.col::<Option<&str>>("page").is_some() { Some(proxied::page_meta(&found)?) } else { None };
            let rows = sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE index_name = $1 AND project = $2 AND listed = TRUE ORDER BY filename"
            ))
            .bind(index)
            .bind(name.as_str())
            .fetch_all(&mut *conn)
            .await?;
            let files = rows.iter().map(file_record).collect::<Result<_, _>>()?;
            Ok(Some(ProjectRecord {
                display_name: found.col("display_name"),
                serial: found.col::<i64>("serial") as u64,
                files,
                upstream,
            }))
        })
    }

    /// The rows of the file with this digest and filename, one per index
    /// that has it (listed or not), in index name order. Which of them
    /// answers is the indexes layer's rule.
    pub async fn file_rows(&self, sha256: &Sha256, filename: &str) -> Result<Vec<FileRecord>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE filename = $1 AND sha256 = $2 ORDER BY index_name"
            ))
            .bind(filename)
            .bind(sha256.to_hex())
            .fetch_all(pool)
            .await?;
            rows.iter().map(file_record).collect()
        })
    }
}

/// Inserts the row of a file published in `index` (added, or uploaded
/// with its provenance URL), unless its filename is taken there. Returns
/// whether it did.
pub(crate) async fn insert_file(
    tx: &mut WriteTx,
    index: &str,
    file: &NewFile,
    provenance: Option<String>,
) -> Result<bool, DbError> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO files (index_name, filename, project, version, sha256, size, upload_time_micros,
                                requires_python, metadata_sha256, serve_metadata, provenance)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (index_name, filename) DO NOTHING",
        )
        .bind(index)
        .bind(&file.filename)
        .bind(file.project.as_str())
        .bind(&file.version)
        .bind(file.sha256.to_hex())
        .bind(file.size as i64)
        .bind(file.upload_time.as_microsecond())
        .bind(&file.requires_python)
        .bind(file.metadata_sha256.map(|s| s.to_hex()))
        .bind(file.serve_metadata)
        .bind(provenance)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted > 0)
}

/// Appends a change to the journal and returns its serial.
async fn journal(tx: &mut WriteTx, index: &str, project: &str, action: &str) -> Result<i64, DbError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO journal (index_name, project, action, at_micros) VALUES ($1, $2, $3, $4) RETURNING serial",
        )
        .bind(index)
        .bind(project)
        .bind(action)
        .bind(Timestamp::now().as_microsecond())
        .fetch_one(conn)
        .await?
    }))
}

/// The statement that journals a chunk of changes (`index`, `project` per
/// change, then the action and the time).
static JOURNAL_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO journal (index_name, project, action, at_micros)
         SELECT DISTINCT batch.column1, batch.column2, CAST(${} AS TEXT), CAST(${} AS BIGINT) FROM ({}) AS batch",
        2 * batch::WIDTH + 1,
        2 * batch::WIDTH + 2,
        batch::values_list(&["{}", "{}"], 1)
    )
});

/// Appends one change of `action` to the journal for each `(index,
/// project)` in `changes` (distinct), a chunk per statement.
async fn journal_many(tx: &mut WriteTx, changes: &[(String, String)], action: &str) -> Result<(), DbError> {
    let at = Timestamp::now().as_microsecond();
    for chunk in changes.chunks(batch::WIDTH) {
        on_tx!(tx, |conn| {
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(JOURNAL_MANY.as_str()));
            for (index, project) in batch::padded(chunk) {
                insert = insert.bind(index).bind(project);
            }
            insert.bind(action).bind(at).execute(conn).await?;
        });
    }
    Ok(())
}

/// Points the project at the newest serial, creating it when new.
async fn touch_project(
    tx: &mut WriteTx,
    index: &str,
    name: &str,
    display_name: &str,
    serial: i64,
) -> Result<(), DbError> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO projects (index_name, name, display_name, serial) VALUES ($1, $2, $3, $4)
             ON CONFLICT (index_name, name) DO UPDATE SET serial = excluded.serial",
        )
        .bind(index)
        .bind(name)
        .bind(display_name)
        .bind(serial)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub(crate) fn file_record(row: &impl DbRow) -> Result<FileRecord, DbError> {
    let digest = |column: &'static str, value: &str| Sha256::from_str(value).map_err(|_| DbError::Corrupt(column));
    Ok(FileRecord {
        filename: row.col("filename"),
        version: row.col("version"),
        sha256: digest("files.sha256", row.col("sha256"))?,
        size: row.col::<Option<i64>>("size").map(|size| size as u64),
        upload_time: row
            .col::<Option<i64>>("upload_time_micros")
            .map(|micros| Timestamp::from_microsecond(micros).map_err(|_| DbError::Corrupt("files.upload_time_micros")))
            .transpose()?
            .map(|at| UploadTime::with_text(at, row.col("upload_time_text"))),
        requires_python: row.col("requires_python"),
        metadata_sha256: row
            .col::<Option<&str>>("metadata_sha256")
            .map(|v| digest("files.metadata_sha256", v))
            .transpose()?,
        serve_metadata: row.col("serve_metadata"),
        yanked: row.col::<bool>("yanked").then(|| row.col::<Option<String>>("yanked_reason").unwrap_or_default()),
        gpg_sig: row.col("gpg_sig"),
        provenance: row.col("provenance"),
        url: row.col("url"),
    })
}

mod backend;
mod batch;
pub mod cache;
pub mod changes;
pub mod copy;
pub mod holders;
pub mod leases;
mod location;
pub mod mirror;
mod page_writes;
pub mod private;
pub mod project_list;
pub mod proxied;
pub mod snapshot;
mod sqlite_conns;
pub mod status;
#[cfg(test)]
mod testing;
mod write;

#[cfg(test)]
pub(crate) mod tests {
    use super::testing::{TestDb, each_backend};
    use super::*;

    pub(crate) fn new_file(project: &str, filename: &str, content: &[u8]) -> NewFile {
        NewFile {
            project: NormalizedName::new(project).unwrap(),
            display_name: project.to_owned(),
            filename: filename.to_owned(),
            version: "1.0".to_owned(),
            sha256: Sha256::of(content),
            size: content.len() as u64,
            upload_time: Timestamp::from_second(1_700_000_000).unwrap(),
            requires_python: Some(">=3.8".to_owned()),
            metadata_sha256: None,
            serve_metadata: false,
        }
    }

    each_backend! {
    async fn publishes_reads_back_and_bumps_serials(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        assert_eq!(db.last_serial().await.unwrap(), 0);
        let file = new_file("Demo_Pkg", "demo_pkg-1.0.tar.gz", b"one");
        assert_eq!(db.add_files("local", std::slice::from_ref(&file)).await.unwrap(), [AddOutcome::Added]);
        assert_eq!(db.add_files("local", std::slice::from_ref(&file)).await.unwrap(), [AddOutcome::AlreadyPresent]);
        assert_eq!(db.last_serial().await.unwrap(), 1);
        let project = db.project("local", &file.project).await.unwrap().unwrap();
        assert_eq!((project.display_name.as_str(), project.serial), ("Demo_Pkg", 1));
        assert_eq!(project.files[0].sha256, file.sha256);
        assert_eq!(project.files[0].upload_time, Some(file.upload_time.into()));
        assert_eq!(project.files[0].requires_python.as_deref(), Some(">=3.8"));
        assert!(db.project("other-index", &file.project).await.unwrap().is_none());
        assert_eq!(db.file_rows(&file.sha256, "demo_pkg-1.0.tar.gz").await.unwrap().len(), 1);
        assert!(db.file_rows(&file.sha256, "other-1.0.tar.gz").await.unwrap().is_empty());
        let changes = db.changes_since(0, 10).await.unwrap();
        assert_eq!(changes, [(1, file.project.clone())]);
    }
    }

    each_backend! {
    async fn a_conflict_rolls_back_the_whole_batch(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        db.add_files("local", &[new_file("a", "a-1.0.tar.gz", b"a")]).await.unwrap();
        let batch = [new_file("b", "b-1.0.tar.gz", b"b"), new_file("a", "a-1.0.tar.gz", b"other")];
        let err = db.add_files("local", &batch).await.unwrap_err();
        assert!(matches!(err, DbError::FileConflict { ref filename, .. } if filename == "a-1.0.tar.gz"), "{err}");
        assert!(db.project("local", &NormalizedName::new("b").unwrap()).await.unwrap().is_none());
        assert_eq!(db.projects("local").await.unwrap().len(), 1);
        assert_eq!(db.last_serial().await.unwrap(), 1);
    }
    }

    /// Both sets of migrations have the same versions and descriptions,
    /// and leave the same tables with the same columns (name, SQLite type
    /// family, nullability): a query that runs on one finds its columns on
    /// the other.
    #[tokio::test]
    async fn both_backends_have_the_same_migrations_tables_and_columns() {
        let list = |migrator: &sqlx::migrate::Migrator| {
            migrator.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>()
        };
        assert_eq!(list(&sqlx::migrate!("./migrations/sqlite")), list(&sqlx::migrate!("./migrations/postgres")));
        let mut schemas = Vec::new();
        for backend in [testing::Backend::Sqlite, testing::Backend::Postgres] {
            let test = TestDb::new(backend);
            let db = test.open().await;
            let columns: Vec<(String, String, String, bool)> = match &db.pool {
                Pool::Sqlite(conns) => sqlx::query_as(
                    "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
                )
                .fetch_all(&mut *conns.acquire().await.unwrap())
                .await
                .unwrap(),
                Pool::Postgres(pool) => sqlx::query_as(
                    "SELECT table_name::text, column_name::text,
                            CASE data_type WHEN 'text' THEN 'TEXT' WHEN 'bytea' THEN 'BLOB' ELSE 'INTEGER' END,
                            is_nullable = 'NO'
                     FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
                     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'
                       AND t.table_type = 'BASE TABLE'",
                )
                .fetch_all(pool)
                .await
                .unwrap(),
            };
            assert!(columns.len() > 50, "{columns:?}");
            schemas.push(columns.into_iter().collect::<std::collections::BTreeSet<_>>());
        }
        let only_sqlite: Vec<_> = schemas[0].difference(&schemas[1]).collect();
        let only_postgres: Vec<_> = schemas[1].difference(&schemas[0]).collect();
        assert!(
            only_sqlite.is_empty() && only_postgres.is_empty(),
            "SQLite only: {only_sqlite:?}\nPostgreSQL only: {only_postgres:?}"
        );
    }

    each_backend! {
    /// Nodes (or processes) starting together on a new database migrate it
    /// one after the other: every opener succeeds and each migration is
    /// applied once.
    async fn many_openers_of_a_new_database_take_turns(backend: Backend) {
        let test = std::sync::Arc::new(TestDb::new(backend));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let test = test.clone();
                tokio::spawn(async move { Database::connect(&test.location).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
        let db = test.open().await;
        let applied = async {
            Ok::<Vec<i64>, DbError>(on_pool!(&db.pool, |pool| {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(pool).await?
            }))
        };
        let applied = applied.await.unwrap();
        let shipped: Vec<i64> = sqlx::migrate!("./migrations/sqlite").iter().map(|m| m.version).collect();
        assert_eq!(applied, shipped);
    }
    }

    /// A write that fails because the disk is full must not leave its
    /// connection mid-transaction in the pool: once space is back, every
    /// write succeeds again, without a restart.
    #[tokio::test]
    async fn writes_recover_once_a_full_disk_has_room_again() {
        let disk = larder_testkit::SmallDisk::mount(2);
        let db = Database::open(&disk.path().join("larder.db")).await.unwrap();
        db.add_files("local", &[new_file("first", "first-1.0.tar.gz", b"first")]).await.unwrap();
        let filler = disk.fill();
        let bulky = |i: usize| {
            let mut file = new_file(&format!("p{i}"), &format!("p{i}-1.0.tar.gz"), format!("p{i}").as_bytes());
            file.requires_python = Some(format!(">={i}").repeat(20_000));
            file
        };
        let mut failed = 0;
        for i in 0..12 {
            failed += usize::from(db.add_files("local", &[bulky(i)]).await.is_err());
        }
        assert!(failed > 0, "no write failed on a full disk");
        filler.release();
        for i in 100..130 {
            let name = format!("q{i}");
            db.add_files("local", &[new_file(&name, &format!("{name}-1.0.tar.gz"), name.as_bytes())])
                .await
                .unwrap_or_else(|e| panic!("write {i} after space came back: {e}"));
        }
        db.touch_page(&NormalizedName::new("q100").unwrap(), Timestamp::now(), None).await.unwrap();
        db.pool.close().await;
    }

    each_backend! {
    async fn two_handles_on_one_database_write_concurrently(backend: Backend) {
        let test = TestDb::new(backend);
        let (db, other) = (test.open().await, test.open().await);
        let writes = (0..20).map(|i| {
            let db = if i % 2 == 0 { db.clone() } else { other.clone() };
            tokio::spawn(async move {
                let name = format!("p{i}");
                db.add_files("local", &[new_file(&name, &format!("{name}-1.0.tar.gz"), name.as_bytes())]).await
            })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().unwrap();
        }
        assert_eq!(db.projects("local").await.unwrap().len(), 20);
        assert_eq!(other.last_serial().await.unwrap(), 20);
    }
    }
}
