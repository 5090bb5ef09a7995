//! `larder verify --sample N` checks the store a slice at a time, each run
//! going on where the previous stopped and starting over after the last
//! file; `--since` skips files found sound recently (so a blob corrupted
//! since is found by the next full or due check, not by this one).

use std::path::Path;

use larder_testkit::mirror::{Outcome, SerialUpstream, blob_path, run_larder};
use larder_testkit::{Built, Larder, Wheel, temp_dir};

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

fn verify(data: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = larder().command();
    cmd.arg("verify").arg("--data-dir").arg(data).arg("--quiet").args(extra);
    run_larder(&mut cmd)
}

/// The number of blobs a verify run says it hashed.
fn checked(outcome: &Outcome) -> u64 {
    let line =
        outcome.stdout.lines().find(|l| l.starts_with("checked ")).unwrap_or_else(|| panic!("{}", outcome.describe()));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn a_rolling_sample_covers_the_store_and_since_skips_recent_checks() {
    let fixtures = temp_dir("verify-rolling-fx");
    let data = temp_dir("verify-rolling-data");
    let upstream = SerialUpstream::start();
    let files: Vec<Built> = (0..6).map(|i| Wheel::new(&format!("roll-{i}"), "1.0").build(fixtures.path())).collect();
    upstream.add_all(&files);
    let mut cmd = larder().command();
    cmd.arg("mirror").arg("--data-dir").arg(data.path()).args([
        "--upstream",
        &upstream.simple_url(),
        "--all",
        "--quiet",
    ]);
    run_larder(&mut cmd).assert_success();

    // Each wheel is two blobs: the file and its extracted METADATA.
    let first = verify(data.path(), &["--sample", "4"]);
    first.assert_code(0);
    assert_eq!(checked(&first), 8, "{}", first.describe());
    let second = verify(data.path(), &["--sample", "4"]);
    assert_eq!(checked(&second), 4, "the second slice is the rest: {}", second.describe());
    let third = verify(data.path(), &["--sample", "4"]);
    assert_eq!(checked(&third), 8, "after the last file a sample starts over: {}", third.describe());

    let recent = verify(data.path(), &["--since", "1h"]);
    recent.assert_code(0);
    assert_eq!(checked(&recent), 0, "{}", recent.describe());
    assert!(recent.stdout.contains("skipped 6 files"), "{}", recent.describe());

    let victim = &files[2];
    std::fs::write(blob_path(data.path(), &victim.sha256), b"not the wheel").unwrap();
    verify(data.path(), &["--since", "1h"]).assert_code(0);
    let full = verify(data.path(), &[]);
    full.assert_code(1);
    assert!(full.stdout.contains(&victim.filename), "{}", full.describe());
}
