//! The bounded cache (`larder serve --max-cache-size`): files the proxy
//! stored for clients are evicted least recently asked for first once they
//! take more than the cap; pinned projects (`larder pin`) and hosted files
//! never are; an evicted file is still listed and is fetched again when
//! asked for; requests running while files are evicted all succeed, and a
//! real install through a cache that keeps nearly nothing works.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `len` bytes that do not compress (so a wheel's size follows them).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn padded_wheel(dir: &Path, name: &str, seed: u64, padding: usize) -> Built {
    Wheel::new(name, "1.0").extra_file("pad.bin", &noise(seed, padding)).build(dir)
}

fn run(cmd: &mut std::process::Command) -> larder_testkit::mirror::Outcome {
    let out = larder_testkit::mirror::run_larder(cmd);
    out.assert_success();
    out
}

fn larder_cmd(data_dir: &Path, args: &[&str]) -> larder_testkit::mirror::Outcome {
    let mut cmd = larder().command();
    cmd.args(args).arg("--data-dir").arg(data_dir);
    run(&mut cmd)
}

fn is_stored(data_dir: &Path, file: &Built) -> bool {
    larder_testkit::mirror::blob_path(data_dir, &file.sha256).exists()
}

/// Fetches a file through larder (its page first, so larder knows it) and
/// checks the bytes.
#[track_caller]
fn fetch(server: &Server, file: &Built) {
    server.get(&format!("/simple/{}/", file.project)).send().assert_status(200);
    let response = server.get(&format!("/files/{}/{}", file.sha256, file.filename)).send();
    response.assert_status(200);
    assert_eq!(sha256_hex(&response.body), file.sha256, "{} came back with other bytes", file.filename);
}

/// Waits until `done` holds (eviction runs in the background).
#[track_caller]
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn evictions(server: &Server) -> usize {
    server
        .log_lines()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|line| line["fields"]["message"] == "evicted from the cache")
        .count()
}

#[test]
fn least_recently_asked_for_goes_first_and_pinned_and_hosted_files_stay() {
    let fixtures = temp_dir("evict-lru-fx");
    let hosted_dir = temp_dir("evict-lru-hosted");
    let data = temp_dir("evict-lru-data");
    let d = fixtures.path();
    let [a, b, c, e] = [("cache-a", 1), ("cache-b", 2), ("cache-c", 3), ("cache-e", 4)]
        .map(|(name, seed)| padded_wheel(d, name, seed, 20_000));
    let pinned = Wheel::new("cache-pinned", "1.0").build(d);
    let upstream = FixtureUpstream::with_files(
        UpstreamFormat::Json,
        &[a.clone(), b.clone(), c.clone(), e.clone(), pinned.clone()],
    );
    let hosted = padded_wheel(hosted_dir.path(), "cache-local", 5, 20_000);
    larder().add(data.path(), &[hosted_dir.path()]).assert_success();

    // Pins are kept in the store: set (and listed) with the server stopped.
    let out = larder_cmd(data.path(), &["pin", "Cache_Pinned", "other-*"]);
    assert!(out.stdout.contains("pinned: cache-pinned"), "{}", out.describe());
    let out = larder_cmd(data.path(), &["unpin", "other-*"]);
    assert!(out.stdout.contains("unpinned: other-*"), "{}", out.describe());
    let listed = larder_cmd(data.path(), &["pin", "--list"]);
    assert_eq!(listed.stdout, "cache-pinned\n", "{}", listed.describe());

    // Room for the pinned file and two padded ones, not three.
    let cap = pinned.size + a.size + b.size + a.size / 2;
    let cap_arg = cap.to_string();
    let server =
        larder().serve_with(data.path(), &["--upstream", &upstream.simple_url(), "--max-cache-size", &cap_arg]);

    for file in [&pinned, &a, &b] {
        fetch(&server, file);
    }
    fetch(&server, &hosted);
    fetch(&server, &c);
    wait_until("the least recently asked for file is evicted", || !is_stored(data.path(), &a));
    for file in [&pinned, &b, &c, &hosted] {
        assert!(is_stored(data.path(), file), "{} was evicted", file.filename);
    }

    // Asking for b again makes c the oldest.
    fetch(&server, &b);
    fetch(&server, &e);
    wait_until("the file asked for least recently is evicted", || !is_stored(data.path(), &c));
    for file in [&pinned, &b, &e, &hosted] {
        assert!(is_stored(data.path(), file), "{} was evicted", file.filename);
    }

    // An evicted file is still listed, and fetched again when asked for.
    let page = server.get("/simple/cache-a/").header("Accept", JSON).send();
    page.assert_status(200);
    assert_eq!(page.json()["files"][0]["filename"], a.filename.as_str(), "{}", page.describe());
    let file_path = FixtureUpstream::file_path(&a);
    assert_eq!(upstream.count(&file_path), 1);
    fetch(&server, &a);
    assert_eq!(upstream.count(&file_path), 2, "the evicted file was not fetched again");
    wait_until("a third file is evicted", || evictions(&server) >= 3);
    assert!(is_stored(data.path(), &pinned) && is_stored(data.path(), &hosted), "a pinned or hosted file went");
    drop(server);

    let out = larder_cmd(data.path(), &["gc", "--dry-run"]);
    let line =
        |kind: &str| out.stdout.lines().find(|l| l.trim_start().starts_with(kind)).unwrap_or_default().to_owned();
    assert!(line("hosted").contains(" 1 files"), "{}", out.describe());
    assert!(line("cached").contains(" 3 files"), "{}", out.describe());
    assert!(line("evictable").contains(" 2 files"), "pinned files are not evictable: {}", out.describe());
    assert!(line("evicted").contains(" 2 files"), "{}", out.describe());
}

#[test]
fn requests_during_eviction_all_succeed_and_installs_work() {
    let fixtures = temp_dir("evict-busy-fx");
    let hosted_dir = temp_dir("evict-busy-hosted");
    let data = temp_dir("evict-busy-data");
    let d = fixtures.path();
    let mut files: Vec<Built> = (0..6).map(|i| padded_wheel(d, &format!("busy-{i}"), 10 + i, 30_000)).collect();
    files.push(Wheel::new("busy-app", "1.0").requires_dist("busy-lib").requires_dist("busy-pinned").build(d));
    files.push(Wheel::new("busy-lib", "1.0").build(d));
    let pinned = Wheel::new("busy-pinned", "1.0").build(d);
    files.push(pinned.clone());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let hosted = padded_wheel(hosted_dir.path(), "busy-local", 20, 1000);
    larder().add(data.path(), &[hosted_dir.path()]).assert_success();
    larder_cmd(data.path(), &["pin", "busy-pinned"]);
    // A cap of one byte: every download evicts everything evictable.
    let server = larder().serve_with(data.path(), &["--upstream", &upstream.simple_url(), "--max-cache-size", "1"]);

    std::thread::scope(|scope| {
        for worker in 0..6 {
            let (server, files) = (&server, &files);
            scope.spawn(move || {
                for round in 0..8 {
                    fetch(server, &files[(worker + round) % 6]);
                }
            });
        }
    });
    wait_until("files are evicted under a one-byte cap", || evictions(&server) > 0);
    fetch(&server, &hosted);

    let clients = Clients::new();
    let target = clients.target_venv("evict-busy");
    let mut pip = clients.pip();
    pip.arg("--python").arg(&target).args(["install", "--index-url", server.url("/simple/").as_str(), "busy-app"]);
    run_ok(&mut pip);
    assert!(is_stored(data.path(), &pinned), "the pinned file was evicted");
    assert!(is_stored(data.path(), &hosted), "the hosted file was evicted");
    // Everything else goes once the install is over.
    wait_until("every unpinned cached file is evicted", || {
        files.iter().filter(|f| f.project != "busy-pinned").all(|f| !is_stored(data.path(), f))
    });
}
