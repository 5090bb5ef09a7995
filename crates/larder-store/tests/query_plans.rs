//! The statements of the write and page paths do the same work at any
//! store size: each one's plan (`EXPLAIN QUERY PLAN`) seeks the rows it
//! needs, none walks a whole table or a whole index, and the number of
//! statements per operation does not change between a store of 1,000 and
//! one of 20,000 files, with the statistics the store ships or with ones
//! `ANALYZE` measured.
//!
//! The statements are the ones the store really runs: sqlx reports each
//! on its `sqlx::query` tracing target (from its worker thread, so this
//! test binary holds one test and a global subscriber).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use larder_index::{NormalizedName, Sha256};
use larder_store::db::snapshot::SnapshotProject;
use larder_store::{Database, FileRecord, NewFile, PageState, StoredDownload, UPSTREAM_INDEX, UpstreamMeta};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Files per project in the generated stores.
const FILES_PER_PROJECT: usize = 3;

/// Files in a bulk job's batch of downloads (of several projects).
const BATCH_FILES: usize = 30;

/// Collects the SQL of the statements sqlx runs while recording.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Option<Vec<String>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut sql = Statement::default();
        event.record(&mut sql);
        if let Some(recorded) = self.0.lock().unwrap().as_mut() {
            let text = if sql.statement.trim().is_empty() { sql.summary } else { sql.statement };
            // Only what reads or writes rows: a new pooled connection
            // also runs its setup PRAGMAs, and transactions BEGIN and COMMIT.
            let text = text.trim();
            if ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].iter().any(|verb| text.starts_with(verb)) {
                recorded.push(text.to_owned());
            }
        }
    }
}

#[derive(Default)]
struct Statement {
    summary: String,
    statement: String,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl Recorder {
    /// Runs `work`, returning the statements it ran.
    async fn record<F: Future<Output = ()>>(&self, work: F) -> Vec<String> {
        *self.0.lock().unwrap() = Some(Vec::new());
        work.await;
        self.0.lock().unwrap().take().unwrap()
    }
}

fn name(i: usize) -> NormalizedName {
    NormalizedName::new(&format!("project-{i:06}")).unwrap()
}

fn upstream_file(project: usize, version: usize) -> FileRecord {
    let filename = format!("project_{project:06}-{version}.0-py3-none-any.whl");
    FileRecord {
        sha256: Sha256::of(filename.as_bytes()),
        url: Some(format!("http://127.0.0.1:9/files/{filename}")),
        filename,
        version: format!("{version}.0"),
        size: Some(1200),
        upload_time: Some(Timestamp::from_second(1_700_000_000).unwrap().into()),
        requires_python: None,
        metadata_sha256: None,
        serve_metadata: true,
        yanked: None,
        gpg_sig: None,
        provenance: None,
    }
}

/// A store with `projects` upstream projects of three files each.
async fn filled(dir: &std::path::Path, projects: usize) -> Database {
    let db = Database::open(&dir.join("larder.db")).await.unwrap();
    let snapshot: Vec<SnapshotProject> = (0..projects)
        .map(|p| SnapshotProject {
            index: UPSTREAM_INDEX.to_owned(),
            name: name(p),
            display_name: name(p).to_string(),
            files: (0..FILES_PER_PROJECT).map(|v| upstream_file(p, v)).collect(),
            upstream: None,
        })
        .collect();
    db.import_snapshot(&snapshot).await.unwrap();
    db
}

/// The hot operations on one project of the store, each with the
/// statements it ran.
async fn hot_operations(db: &Database, recorder: &Recorder, project: usize) -> BTreeMap<&'static str, Vec<String>> {
    let name = name(project);
    let mut files: Vec<FileRecord> = (0..FILES_PER_PROJECT + 1).map(|v| upstream_file(project, v)).collect();
    let state = PageState {
        fetched_at: Timestamp::now(),
        found: true,
        source_url: Some("http://127.0.0.1:9/simple/p/".into()),
        etag: None,
        body_sha256: None,
    };
    let meta = UpstreamMeta::default();
    let mut ops = BTreeMap::new();
    let stored = files[0].clone();
    ops.insert(
        "refresh a page",
        recorder
            .record(async { db.replace_page(&name, name.as_str(), &state, &meta, &files).await.map(drop).unwrap() })
            .await,
    );
    ops.insert(
        "record a download",
        recorder.record(async { db.record_download(&stored.sha256, &stored.filename, 1200).await.unwrap() }).await,
    );
    let download = StoredDownload {
        sha256: stored.sha256,
        filename: stored.filename.clone(),
        size: 1200,
        metadata: Some(Sha256::of(b"metadata")),
    };
    ops.insert(
        "record a batch of downloads",
        recorder.record(async { db.record_downloads(&[download]).await.unwrap() }).await,
    );
    // A bulk job's batch: files of several projects, recorded together.
    let batch: Vec<StoredDownload> = (0..BATCH_FILES)
        .map(|i| {
            let file = upstream_file(project + 1 + i / FILES_PER_PROJECT, i % FILES_PER_PROJECT);
            StoredDownload { sha256: file.sha256, filename: file.filename, size: 1200, metadata: None }
        })
        .collect();
    ops.insert(
        "record a big batch of downloads",
        recorder.record(async { db.record_downloads(&batch).await.unwrap() }).await,
    );
    ops.insert(
        "record metadata",
        recorder
            .record(async {
                db.record_metadata(&stored.sha256, &stored.filename, &Sha256::of(b"m"), true).await.unwrap()
            })
            .await,
    );
    files[0].sha256 = Sha256::of(b"other bytes");
    ops.insert(
        "refresh a page naming other bytes",
        recorder
            .record(async { db.replace_page(&name, name.as_str(), &state, &meta, &files).await.map(drop).unwrap() })
            .await,
    );
    ops.insert(
        "read a project page",
        recorder.record(async { db.project(UPSTREAM_INDEX, &name).await.map(drop).unwrap() }).await,
    );
    ops.insert(
        "read a page's files",
        recorder.record(async { db.upstream_files(&name).await.map(drop).unwrap() }).await,
    );
    ops.insert("read a page's state", recorder.record(async { db.page_state(&name).await.map(drop).unwrap() }).await);
    ops.insert(
        "find a file",
        recorder.record(async { db.file_rows(&stored.sha256, &stored.filename).await.map(drop).unwrap() }).await,
    );
    ops.insert(
        "record a mirror serial",
        recorder.record(async { db.set_mirror_serials(&[(name.clone(), 7)]).await.unwrap() }).await,
    );
    let local = NewFile {
        project: name.clone(),
        display_name: name.to_string(),
        filename: format!("{name}-9.0.tar.gz"),
        version: "9.0".into(),
        sha256: Sha256::of(b"local"),
        size: 5,
        upload_time: Timestamp::now(),
        requires_python: None,
        metadata_sha256: None,
        serve_metadata: false,
    };
    ops.insert(
        "publish a local file",
        recorder.record(async { db.add_files("local", &[local]).await.map(drop).unwrap() }).await,
    );
    ops.insert(
        "record a verified blob",
        recorder.record(async { db.record_checks(&[stored.sha256], Timestamp::now()).await.unwrap() }).await,
    );
    let cursor = (UPSTREAM_INDEX.to_owned(), stored.filename.clone());
    ops.insert(
        "walk files to verify",
        recorder.record(async { db.files_after(Some(&cursor), 10).await.map(drop).unwrap() }).await,
    );
    ops.insert("last serial", recorder.record(async { db.last_serial().await.map(drop).unwrap() }).await);
    ops.insert(
        "a page gone upstream",
        recorder.record(async { db.mark_page_missing(&name, Timestamp::now()).await.unwrap() }).await,
    );
    ops
}

/// The plan lines of `sql` that walk a whole table or a whole index.
async fn full_walks(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    let rows: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(pool).await.unwrap();
    rows.into_iter()
        .map(|(_, _, _, detail)| detail)
        .filter(|detail| {
            let scan =
                detail.starts_with("SCAN ") && !detail.contains("VIRTUAL TABLE") && detail != "SCAN CONSTANT ROW";
            // A batch statement walks its own VALUES list.
            let values =
                detail == "SCAN batch" || detail.ends_with("CONSTANT ROWS") || detail.ends_with("VALUES CLAUSE");
            // A seek on the index name alone reads every row of the index.
            (scan && !values) || detail.ends_with("(index_name=?)")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_statements_seek_and_their_number_does_not_grow() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone())).unwrap();
    let mut counts: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for projects in [1_000 / FILES_PER_PROJECT, 20_000 / FILES_PER_PROJECT] {
        let dir = tempfile::tempdir().unwrap();
        let db = filled(dir.path(), projects).await;
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("larder.db").display())).await.unwrap();
        for statistics in ["shipped", "analyzed"] {
            if statistics == "analyzed" {
                // The samples ANALYZE also takes (sqlite_stat4) weigh the
                // values bound at run time, which EXPLAIN here does not
                // have (every parameter is NULL): only the averages stay.
                sqlx::query("ANALYZE").execute(&pool).await.unwrap();
                sqlx::query("DELETE FROM sqlite_stat4").execute(&pool).await.unwrap();
            }
            // A fresh connection reads the statistics as they are now.
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("larder.db").display()))
                .await
                .unwrap();
            let project = if statistics == "shipped" { projects / 2 } else { projects / 3 };
            for (op, statements) in hot_operations(&db, &recorder, project).await {
                counts.entry((op, statistics)).or_default().push(statements.len());
                assert!(!statements.is_empty(), "{op}: no statement recorded");
                for sql in &statements {
                    let walks = full_walks(&pool, sql).await;
                    assert!(walks.is_empty(), "{op} ({statistics} statistics, {projects} projects): {sql}\n{walks:?}");
                }
            }
        }
    }
    for ((op, statistics), per_size) in &counts {
        assert!(per_size.windows(2).all(|w| w[0] == w[1]), "{op} ({statistics}): statements per size {per_size:?}");
    }
    // A bulk job's batch runs as many statements as one download: each
    // statement costs a round trip to the database, so a statement per
    // file (or per project) was a cost per mirrored file.
    let one = &counts[&("record a batch of downloads", "shipped")];
    let many = &counts[&("record a big batch of downloads", "shipped")];
    assert_eq!(one, many, "statements for a batch of one download and of {BATCH_FILES}");
}
