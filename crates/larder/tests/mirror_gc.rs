//! `larder gc`: on a freshly mirrored store every blob is referenced (the
//! files and their core metadata), so nothing goes even with `--grace 0s`;
//! a blob nothing refers to is removed once older than the grace period,
//! and kept while younger.

use std::path::Path;
use std::time::{Duration, SystemTime};

use larder_testkit::mirror::{Outcome, SerialUpstream, blob_path, run_larder, set_mtime, stored_digests};
use larder_testkit::{Built, Clients, Larder, Sdist, Wheel, run_ok, sha256_hex, temp_dir};

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

fn gc(larder: &Larder, data_dir: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = larder.command();
    cmd.arg("gc").arg("--data-dir").arg(data_dir).args(extra);
    let out = run_larder(&mut cmd);
    out.assert_success();
    out
}

/// Drops `content` into the blob store under its own digest, with the
/// given age.
fn drop_blob(data_dir: &Path, content: &[u8], age: Duration) -> std::path::PathBuf {
    let path = blob_path(data_dir, &sha256_hex(content));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("blob dirs");
    std::fs::write(&path, content).expect("write blob");
    set_mtime(&path, SystemTime::now() - age);
    path
}

#[test]
fn gc_keeps_every_referenced_blob_and_removes_unreferenced_old_ones() {
    let larder = larder();
    let fixtures = temp_dir("mirror-gc-fx");
    let data = temp_dir("mirror-gc-data");
    let mut upstream = SerialUpstream::start();
    let d = fixtures.path();
    let files: Vec<Built> = vec![
        Wheel::new("gc-lib", "1.0").build(d),
        Wheel::new("gc-lib", "2.0").build(d),
        Wheel::new("gc-app", "1.0").requires_dist("gc-lib").build(d),
        Sdist::new("gc-src", "1.0").build(d),
    ];
    upstream.add_all(&files);
    let mut cmd = larder.command();
    cmd.arg("mirror").arg("--data-dir").arg(data.path()).args([
        "--upstream",
        &upstream.simple_url(),
        "--project",
        "gc-lib",
        "--project",
        "gc-app",
        "--project",
        "gc-src",
        "--jobs",
        "4",
        "--quiet",
    ]);
    run_larder(&mut cmd).assert_success();
    upstream.stop();
    // Core metadata the mirror kept counts as referenced too: make it old.
    let before = stored_digests(data.path());
    for digest in &before {
        set_mtime(&blob_path(data.path(), digest), SystemTime::now() - Duration::from_secs(7200));
    }
    for f in &files {
        assert!(before.contains(&f.sha256), "{} not mirrored", f.filename);
    }

    // --- nothing to collect on a fresh mirror ------------------------
    let out = gc(&larder, data.path(), &["--grace", "0s"]);
    assert_eq!(stored_digests(data.path()), before, "gc removed referenced blobs: {}", out.describe());
    assert!(out.stdout.contains("removed 0 unreferenced blobs"), "{}", out.describe());

    // --- unreferenced blobs: old ones go, young ones stay ------------
    let old = drop_blob(data.path(), b"an unreferenced blob, two hours old", Duration::from_secs(7200));
    let young = drop_blob(data.path(), b"an unreferenced blob, just written", Duration::ZERO);

    let dry = gc(&larder, data.path(), &["--dry-run"]);
    assert!(old.exists() && young.exists(), "--dry-run removed something: {}", dry.describe());
    assert!(dry.stdout.contains("would remove 1 unreferenced blobs"), "{}", dry.describe());

    let out = gc(&larder, data.path(), &[]);
    assert!(!old.exists(), "the old unreferenced blob is still there: {}", out.describe());
    assert!(young.exists(), "a blob younger than the grace period was removed: {}", out.describe());
    assert!(out.stdout.contains("removed 1 unreferenced blobs"), "{}", out.describe());

    let out = gc(&larder, data.path(), &["--grace", "0s"]);
    assert!(!young.exists(), "--grace 0s should remove every unreferenced blob: {}", out.describe());
    assert_eq!(stored_digests(data.path()), before, "gc touched referenced blobs: {}", out.describe());

    // The store is sound and installs offline.
    let mut verify = larder.command();
    verify.arg("verify").arg("--data-dir").arg(data.path()).arg("--quiet");
    run_larder(&mut verify).assert_code(0);
    let server = larder.serve_with(data.path(), &["--offline"]);
    let clients = Clients::new();
    let target = clients.target_venv("after-gc");
    let mut pip = clients.pip();
    pip.arg("--python").arg(&target).args([
        "install",
        "--index-url",
        server.url("/simple/").as_str(),
        "gc-app",
        "gc-src",
    ]);
    run_ok(&mut pip);
}
