//! The work a whole-index mirror does per stored file does not grow with
//! the index: `larder mirror --all` of a synthetic upstream of 100 and of
//! 1,000 projects (three wheels each) runs no more database statements,
//! and reads no more rows, per stored file at the larger size. (The issue
//! asks 1,000 against 20,000 projects; a debug build takes minutes for
//! 20,000, and a term that grows with the store shows at 10 times the
//! size already. The fixed cost of opening a store, its migrations, weighs
//! more per file in the small run, which only makes the check stricter for
//! the large one.)
//!
//! The statements are the ones larder really runs: sqlx reports each on its
//! `sqlx::query` log target, with the rows it returned.

use larder_testkit::mirror::run_larder;
use larder_testkit::synthetic::{self, Synthetic};
use larder_testkit::{Larder, temp_dir};

/// Files per synthetic project.
const FILES_PER_PROJECT: u64 = 3;

/// The statements a stored file may cost at 1,000 projects in the default
/// store, SQLite (3.11 when this was set; a little slack for group
/// commits, which vary). A shared store (`LARDER_TEST_NODES`) also takes a
/// download lease per file, so there only the growth is checked.
const MOST_STATEMENTS_PER_FILE: f64 = 3.2;

/// What a mirror run did in the database, per stored file.
#[derive(Debug)]
struct Work {
    statements: f64,
    rows: f64,
}

/// Mirrors a synthetic upstream of `projects` projects into a new store.
fn mirror_work(projects: u64) -> Work {
    let larder = Larder::new(env!("CARGO_BIN_EXE_larder"));
    let data = temp_dir("mirror-work");
    let upstream = synthetic::start(Synthetic { projects, generation: 0, changed_every: 100 });
    let mut cmd = larder.command();
    cmd.env("RUST_LOG", "warn,sqlx::query=debug").arg("mirror").arg("--data-dir").arg(data.path()).args([
        "--upstream",
        &upstream,
        "--all",
        "--jobs",
        "4",
        "--quiet",
    ]);
    let outcome = run_larder(&mut cmd);
    assert!(outcome.status.success(), "{}\n{}", outcome.command, outcome.stderr);
    let (mut statements, mut rows) = (0u64, 0u64);
    for line in outcome.stderr.lines().filter(|line| line.contains("sqlx::query")) {
        let summary = line.split("summary=\"").nth(1).unwrap_or_default();
        // What reads or writes rows: not BEGIN/COMMIT, PRAGMAs or DDL.
        if ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].iter().any(|verb| summary.starts_with(verb)) {
            statements += 1;
            rows += line
                .split("rows_returned=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("sqlx logs the rows a statement returned");
        }
    }
    let files = projects * FILES_PER_PROJECT;
    let summary = format!("mirrored {projects} projects: {files} files downloaded");
    assert!(outcome.stdout.contains(&summary) || outcome.stderr.contains(&summary), "{}", outcome.stdout);
    Work { statements: statements as f64 / files as f64, rows: rows as f64 / files as f64 }
}

#[test]
fn statements_and_rows_per_stored_file_do_not_grow_with_the_index() {
    let small = mirror_work(100);
    let large = mirror_work(1_000);
    eprintln!("per stored file: {small:?} at 100 projects, {large:?} at 1,000");
    assert!(small.statements > 0.0 && small.rows > 0.0, "nothing recorded: {small:?}");
    // Batched statements round up per batch: a little slack, far below
    // what a statement or a row per file per stored project would add.
    assert!(large.statements <= small.statements * 1.05, "statements per stored file: {small:?} then {large:?}");
    assert!(large.rows <= small.rows * 1.05, "rows read per stored file: {small:?} then {large:?}");
    // Reading each page's state twice again would cost a third of a
    // statement more per file (3.43 then).
    if larder_testkit::shared::node_count() == 1 {
        assert!(large.statements <= MOST_STATEMENTS_PER_FILE, "statements per stored file: {large:?}");
    }
}
