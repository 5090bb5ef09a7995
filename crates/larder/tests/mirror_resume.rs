//! A `larder mirror --all` run killed (SIGKILL) half-way: the re-run
//! completes without downloading again what the killed run had stored,
//! and `larder verify` finds the store sound. A blob corrupted on disk is
//! then named by `verify` (exit 1) and fetched again by `verify --repair`.
//! Two runs at once on one data dir both complete and leave a sound store.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use larder_testkit::mirror::{ChildGuard, Outcome, SerialUpstream, blob_path, run_larder, stored_digests};
use larder_testkit::{Built, Larder, Wheel, sha256_hex, temp_dir};

const PROJECTS: usize = 12;
const VERSIONS: &[&str] = &["1.0", "1.1", "1.2"];

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

fn mirror_all_command(larder: &Larder, data_dir: &Path, upstream: &SerialUpstream) -> std::process::Command {
    let mut cmd = larder.command();
    cmd.arg("mirror").arg("--data-dir").arg(data_dir).args([
        "--upstream",
        &upstream.simple_url(),
        "--all",
        "--jobs",
        "4",
        "--quiet",
    ]);
    cmd
}

fn verify(larder: &Larder, data_dir: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = larder.command();
    cmd.arg("verify").arg("--data-dir").arg(data_dir).arg("--quiet").args(extra);
    run_larder(&mut cmd)
}

fn stored_fixtures<'a>(data_dir: &Path, files: &'a [Built]) -> Vec<&'a Built> {
    let stored = stored_digests(data_dir);
    files.iter().filter(|f| stored.contains(&f.sha256)).collect()
}

#[test]
fn killed_run_resumes_without_downloading_twice_and_verify_repairs_a_corrupt_blob() {
    let larder = larder();
    let fixtures = temp_dir("mirror-resume-fx");
    let data = temp_dir("mirror-resume-data");
    let upstream = SerialUpstream::start();
    let files: Vec<Built> = (0..PROJECTS)
        .flat_map(|i| VERSIONS.iter().map(move |v| (i, *v)))
        .map(|(i, v)| Wheel::new(&format!("resume-{i:02}"), v).build(fixtures.path()))
        .collect();
    upstream.add_all(&files);
    upstream.set_file_delay(Duration::from_millis(250));

    // --- a run killed mid-way ----------------------------------------
    let mut run = ChildGuard::spawn(mirror_all_command(&larder, data.path(), &upstream));
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let stored = stored_fixtures(data.path(), &files).len();
        if stored >= 8 {
            break;
        }
        assert!(run.is_running(), "the mirror ended before it could be killed: {}", run.wait().describe());
        assert!(Instant::now() < deadline, "only {stored} files stored after 25 s\n{}", upstream.describe());
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = run.kill();
    assert_eq!(killed.code(), None, "the mirror should have died of SIGKILL: {}", killed.describe());
    // Let the upstream's threads record the requests that reached it just
    // before the kill.
    std::thread::sleep(Duration::from_millis(300));
    let stored_at_kill: BTreeSet<String> =
        stored_fixtures(data.path(), &files).iter().map(|f| f.filename.clone()).collect();
    assert!(
        stored_at_kill.len() < files.len(),
        "the run finished before the kill ({} files stored): nothing to resume",
        stored_at_kill.len()
    );
    // Downloads the killed run had started but not stored: these may be
    // fetched again.
    let counts_at_kill = upstream.counts();
    let in_flight: BTreeSet<String> = files
        .iter()
        .filter(|f| counts_at_kill.contains_key(&SerialUpstream::file_path(f)) && !stored_at_kill.contains(&f.filename))
        .map(|f| f.filename.clone())
        .collect();

    // --- the re-run completes ----------------------------------------
    upstream.set_file_delay(Duration::ZERO);
    let rerun = run_larder(&mut mirror_all_command(&larder, data.path(), &upstream));
    rerun.assert_success();
    let missing: Vec<&str> = files
        .iter()
        .filter(|f| !stored_digests(data.path()).contains(&f.sha256))
        .map(|f| f.filename.as_str())
        .collect();
    assert!(missing.is_empty(), "not stored after the re-run: {missing:?}\n{}", rerun.describe());

    let counts = upstream.counts();
    let mut twice = Vec::new();
    for file in &files {
        let n = counts.get(&SerialUpstream::file_path(file)).copied().unwrap_or(0);
        let allowed = if in_flight.contains(&file.filename) { 2 } else { 1 };
        if n > allowed {
            twice.push(format!("{} downloaded {n} times (allowed {allowed})", file.filename));
        }
    }
    assert!(
        twice.is_empty(),
        "files downloaded again:\n{}\nstored at the kill: {stored_at_kill:?}\nin flight at the kill (allowed twice): {in_flight:?}\nrequests:\n{}",
        twice.join("\n"),
        upstream.describe()
    );
    eprintln!(
        "killed with {} of {} files stored and {} in flight ({in_flight:?}); those may be fetched twice",
        stored_at_kill.len(),
        files.len(),
        in_flight.len()
    );

    let clean = verify(&larder, data.path(), &[]);
    clean.assert_code(0);

    // --- a corrupt blob is found and repaired ------------------------
    let victim = &files[5];
    let path = blob_path(data.path(), &victim.sha256);
    let mode = std::fs::metadata(&path).expect("blob").permissions().mode();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o200)).expect("chmod");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open blob")
        .write_all(b"garbage appended by the test")
        .expect("append");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod back");

    let found = verify(&larder, data.path(), &[]);
    found.assert_code(1);
    assert!(
        found.stdout.contains(&victim.filename),
        "verify should name the corrupt file {}: {}",
        victim.filename,
        found.describe()
    );
    let others: Vec<&str> = files
        .iter()
        .filter(|f| f.filename != victim.filename && found.stdout.contains(&format!("corrupt: {}", f.filename)))
        .map(|f| f.filename.as_str())
        .collect();
    assert!(others.is_empty(), "verify blames sound files: {others:?}");

    upstream.reset();
    let repaired = verify(&larder, data.path(), &["--repair", "--upstream", &upstream.simple_url()]);
    repaired.assert_code(0);
    assert_eq!(
        upstream.count(&SerialUpstream::file_path(victim)),
        1,
        "repair should fetch the file again, once\n{}",
        upstream.describe()
    );
    let bytes = std::fs::read(&path).expect("the repaired blob");
    assert_eq!(sha256_hex(&bytes), victim.sha256, "the repaired blob has the wrong content");
    verify(&larder, data.path(), &[]).assert_code(0);
}

#[test]
fn two_concurrent_runs_on_one_data_dir_stay_correct() {
    let larder = larder();
    let fixtures = temp_dir("mirror-concurrent-fx");
    let data = temp_dir("mirror-concurrent-data");
    let upstream = SerialUpstream::start();
    let files: Vec<Built> = (0..PROJECTS)
        .flat_map(|i| VERSIONS.iter().map(move |v| (i, *v)))
        .map(|(i, v)| Wheel::new(&format!("both-{i:02}"), v).build(fixtures.path()))
        .collect();
    upstream.add_all(&files);
    upstream.set_file_delay(Duration::from_millis(40));

    let mut a = ChildGuard::spawn(mirror_all_command(&larder, data.path(), &upstream));
    let mut b = ChildGuard::spawn(mirror_all_command(&larder, data.path(), &upstream));
    let (a, b) = (a.wait(), b.wait());
    a.assert_success();
    b.assert_success();
    let stored = stored_digests(data.path());
    let missing: Vec<&str> =
        files.iter().filter(|f| !stored.contains(&f.sha256)).map(|f| f.filename.as_str()).collect();
    assert!(missing.is_empty(), "not stored: {missing:?}\n{}\n{}", a.describe(), b.describe());
    // Each run may download a file the other is downloading, no more.
    let counts = upstream.counts();
    let thrice: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = counts.get(&SerialUpstream::file_path(f)).copied().unwrap_or(0);
            (n > 2).then(|| format!("{} {n} times", f.filename))
        })
        .collect();
    assert!(thrice.is_empty(), "downloaded more than once per run: {thrice:?}");
    for (path, sound) in larder_testkit::proxy::blobs(data.path()) {
        assert!(sound, "{} does not hash to its name", path.display());
    }
    verify(&larder, data.path(), &[]).assert_code(0);

    // Both recorded the serials: nothing changed, one request.
    upstream.reset();
    upstream.set_file_delay(Duration::ZERO);
    run_larder(&mut mirror_all_command(&larder, data.path(), &upstream)).assert_success();
    assert_eq!(upstream.total(), 1, "{}", upstream.describe());

    let server = larder.serve_with(data.path(), &["--offline"]);
    for i in 0..PROJECTS {
        let page: serde_json::Value = server
            .get(&format!("/simple/both-{i:02}/"))
            .header("Accept", "application/vnd.pypi.simple.v1+json")
            .send()
            .json();
        assert_eq!(page["files"].as_array().map(Vec::len), Some(VERSIONS.len()), "both-{i:02}: {page}");
    }
}
