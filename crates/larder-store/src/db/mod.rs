//! The metadata database: projects, files and the change journal, in an
//! embedded SQLite database (WAL mode, so several larder processes can share
//! one data dir: readers never block; a process's writers take turns on an
//! async lock, and writers of different processes queue on a busy timeout).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use larder_index::{NormalizedName, UploadTime};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use larder_index::FileRecord;
use larder_index::Sha256;

/// The index that holds what the proxy learned from the upstreams.
pub const UPSTREAM_INDEX: &str = "upstream";

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite reported an error.
    #[error("metadata database error: {0}")]
    Sql(#[from] sqlx::Error),
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

/// The metadata database.
#[derive(Clone, Debug)]
pub struct Database {
    pool: SqlitePool,
    write_turn: write::WriteTurn,
}

impl Database {
    /// Opens (creating and migrating when needed) the database file.
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
        sqlx::migrate!("./migrations").run(&setup).await?;
        setup.close().await;
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        drop(lock);
        Ok(Self { pool, write_turn: Default::default() })
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
        let serial: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(serial), 0) FROM journal").fetch_one(&self.pool).await?;
        Ok(serial as u64)
    }

    /// The journal entries after `serial` (at most `limit`), oldest first,
    /// as `(serial, project)`.
    pub async fn changes_since(&self, serial: u64, limit: i64) -> Result<Vec<(u64, NormalizedName)>, DbError> {
        let rows = sqlx::query("SELECT serial, project FROM journal WHERE serial > ? ORDER BY serial LIMIT ?")
            .bind(serial as i64)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let project =
                    NormalizedName::from_normalized(row.get("project")).ok_or(DbError::Corrupt("journal.project"))?;
                Ok((row.get::<i64, _>("serial") as u64, project))
            })
            .collect()
    }

    /// Publishes `files` in `index` in one transaction: either every file is
    /// published (or found already present, byte-identical), or none is.
    pub async fn add_files(&self, index: &str, files: &[NewFile]) -> Result<Vec<AddOutcome>, DbError> {
        let mut tx = self.write().await?;
        let mut outcomes = Vec::with_capacity(files.len());
        for file in files {
            let inserted = sqlx::query(
                "INSERT INTO files (index_name, filename, project, version, sha256, size, upload_time_micros,
                                    requires_python, metadata_sha256, serve_metadata)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let existing: String =
                    sqlx::query_scalar("SELECT sha256 FROM files WHERE index_name = ? AND filename = ?")
                        .bind(index)
                        .bind(&file.filename)
                        .fetch_one(&mut *tx)
                        .await?;
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
        let rows = sqlx::query("SELECT name, display_name, serial FROM projects WHERE index_name = ? ORDER BY name")
            .bind(index)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ProjectSummary {
                    name: NormalizedName::from_normalized(row.get("name")).ok_or(DbError::Corrupt("projects.name"))?,
                    display_name: row.get("display_name"),
                    serial: row.get::<i64, _>("serial") as u64,
                })
            })
            .collect()
    }

    /// A project of `index` with its files, or `None` when it has none.
    pub async fn project(&self, index: &str, name: &NormalizedName) -> Result<Option<ProjectRecord>, DbError> {
        let Some(project) = sqlx::query("SELECT display_name, serial FROM projects WHERE index_name = ? AND name = ?")
            .bind(index)
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE index_name = ? AND project = ? AND listed = 1 ORDER BY filename"
        ))
        .bind(index)
        .bind(name.as_str())
        .fetch_all(&self.pool)
        .await?;
        let upstream = if index == UPSTREAM_INDEX { self.upstream_meta(name).await? } else { None };
        Ok(Some(ProjectRecord {
            display_name: project.get("display_name"),
            serial: project.get::<i64, _>("serial") as u64,
            files: rows.iter().map(file_record).collect::<Result<_, _>>()?,
            upstream,
        }))
    }

    /// The file with this digest and filename in any index (a hosted one
    /// first), if listed anywhere.
    pub async fn file(&self, sha256: &Sha256, filename: &str) -> Result<Option<FileRecord>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files WHERE filename = ? AND sha256 = ? ORDER BY url IS NOT NULL LIMIT 1"
        ))
        .bind(filename)
        .bind(sha256.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_record).transpose()
    }
}

/// Appends a change to the journal and returns its serial.
async fn journal(tx: &mut sqlx::SqliteConnection, index: &str, project: &str, action: &str) -> Result<i64, DbError> {
    Ok(sqlx::query("INSERT INTO journal (index_name, project, action, at_micros) VALUES (?, ?, ?, ?)")
        .bind(index)
        .bind(project)
        .bind(action)
        .bind(Timestamp::now().as_microsecond())
        .execute(tx)
        .await?
        .last_insert_rowid())
}

/// Points the project at the newest serial, creating it when new.
async fn touch_project(
    tx: &mut sqlx::SqliteConnection,
    index: &str,
    name: &str,
    display_name: &str,
    serial: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO projects (index_name, name, display_name, serial) VALUES (?, ?, ?, ?)
         ON CONFLICT (index_name, name) DO UPDATE SET serial = excluded.serial",
    )
    .bind(index)
    .bind(name)
    .bind(display_name)
    .bind(serial)
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) fn file_record(row: &sqlx::sqlite::SqliteRow) -> Result<FileRecord, DbError> {
    let digest = |column: &'static str, value: &str| Sha256::from_str(value).map_err(|_| DbError::Corrupt(column));
    Ok(FileRecord {
        filename: row.get("filename"),
        version: row.get("version"),
        sha256: digest("files.sha256", row.get("sha256"))?,
        size: row.get::<Option<i64>, _>("size").map(|size| size as u64),
        upload_time: row
            .get::<Option<i64>, _>("upload_time_micros")
            .map(|micros| Timestamp::from_microsecond(micros).map_err(|_| DbError::Corrupt("files.upload_time_micros")))
            .transpose()?
            .map(|at| UploadTime::with_text(at, row.get("upload_time_text"))),
        requires_python: row.get("requires_python"),
        metadata_sha256: row
            .get::<Option<&str>, _>("metadata_sha256")
            .map(|v| digest("files.metadata_sha256", v))
            .transpose()?,
        serve_metadata: row.get("serve_metadata"),
        yanked: row.get::<bool, _>("yanked").then(|| row.get::<Option<String>, _>("yanked_reason").unwrap_or_default()),
        gpg_sig: row.get("gpg_sig"),
        provenance: row.get("provenance"),
        url: row.get("url"),
    })
}

pub mod cache;
pub mod holders;
pub mod mirror;
pub mod private;
pub mod proxied;
pub mod snapshot;
pub mod status;
mod write;

#[cfg(test)]
mod tests {
    use super::*;

    fn new_file(project: &str, filename: &str, content: &[u8]) -> NewFile {
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

    async fn open() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("larder.db")).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn publishes_reads_back_and_bumps_serials() {
        let (_dir, db) = open().await;
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
        assert!(db.file(&file.sha256, "demo_pkg-1.0.tar.gz").await.unwrap().is_some());
        assert!(db.file(&file.sha256, "other-1.0.tar.gz").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_conflict_rolls_back_the_whole_batch() {
        let (_dir, db) = open().await;
        db.add_files("local", &[new_file("a", "a-1.0.tar.gz", b"a")]).await.unwrap();
        let batch = [new_file("b", "b-1.0.tar.gz", b"b"), new_file("a", "a-1.0.tar.gz", b"other")];
        let err = db.add_files("local", &batch).await.unwrap_err();
        assert!(matches!(err, DbError::FileConflict { ref filename, .. } if filename == "a-1.0.tar.gz"), "{err}");
        assert!(db.project("local", &NormalizedName::new("b").unwrap()).await.unwrap().is_none());
        assert_eq!(db.projects("local").await.unwrap().len(), 1);
        assert_eq!(db.last_serial().await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_openers_of_a_new_database_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("larder.db");
        let opens: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn({
                    let path = path.clone();
                    async move { Database::open(&path).await.map(|_| ()) }
                })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
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

    #[tokio::test]
    async fn two_handles_on_one_file_write_concurrently() {
        let (dir, db) = open().await;
        let other = Database::open(&dir.path().join("larder.db")).await.unwrap();
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
