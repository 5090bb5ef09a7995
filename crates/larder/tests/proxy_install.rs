//! Real pip and uv install through the caching proxy: cold (every page and
//! file comes from a fixture upstream, once), then warm with the upstream
//! stopped (everything from larder's store), and eight cold `pip install`s
//! at once through a fresh larder.
//!
//! The tree: `fixture-app` 1.0 (wheel) requires `fixture-lib>=1.0` and
//! `fixture-src`; `fixture-lib` 1.0, 2.0 (`Requires-Python >=3.8`) and 3.0
//! (`>=4`, never chosen); `fixture-src` 1.0, sdist only, requires
//! `fixture-lib<3`. The right install is app 1.0, lib 2.0, src 1.0.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const APP: &str = "fixture_app-1.0-py3-none-any.whl";
const LIB1: &str = "fixture_lib-1.0-py3-none-any.whl";
const LIB2: &str = "fixture_lib-2.0-py3-none-any.whl";
const LIB3: &str = "fixture_lib-3.0-py3-none-any.whl";
const SRC: &str = "fixture_src-1.0.tar.gz";

struct Tree {
    files: Vec<Built>,
    _dir: TempDir,
}

impl Tree {
    fn file(&self, filename: &str) -> &Built {
        self.files.iter().find(|f| f.filename == filename).unwrap()
    }
}

/// Builds the tree and an upstream serving it (requires-python on the
/// pages as well as in the metadata).
fn tree_upstream(format: UpstreamFormat, serve_metadata: bool) -> (Tree, FixtureUpstream) {
    let dir = temp_dir("install-fx");
    let d = dir.path();
    let files = vec![
        Wheel::new("fixture-app", "1.0")
            .requires_dist("fixture-lib>=1.0")
            .requires_dist("fixture-src")
            .module_source("from fixture_lib import __version__ as LIB_VERSION\n")
            .build(d),
        Wheel::new("fixture-lib", "1.0").build(d),
        Wheel::new("fixture-lib", "2.0").requires_python(">=3.8").build(d),
        Wheel::new("fixture-lib", "3.0").requires_python(">=4").build(d),
        Sdist::new("fixture-src", "1.0").requires_dist("fixture-lib<3").build(d),
    ];
    let upstream = FixtureUpstream::start(format);
    upstream.set_serve_metadata(serve_metadata);
    for f in &files {
        let mut file = UpstreamFile::new(f);
        if f.filename == LIB2 {
            file = file.requires_python(">=3.8");
        } else if f.filename == LIB3 {
            file = file.requires_python(">=4");
        }
        upstream.add_file(file);
    }
    (Tree { files, _dir: dir }, upstream)
}

fn serve(data_dir: &Path, upstream: &FixtureUpstream, extra: &[&str]) -> Server {
    let url = upstream.simple_url();
    let mut args = vec!["--upstream", url.as_str()];
    args.extend_from_slice(extra);
    larder().serve_with(data_dir, &args)
}

#[track_caller]
fn assert_right_tree_installed(clients: &Clients, python: &Path) {
    let script = r#"
import importlib.metadata as m, json
import fixture_app, fixture_lib, fixture_src
print(json.dumps([m.version("fixture-app"), m.version("fixture-lib"), m.version("fixture-src"), fixture_app.LIB_VERSION]))
"#;
    let out = run_ok(clients.command(python).arg("-c").arg(script));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON from the version script");
    assert_eq!(got, serde_json::json!(["1.0", "2.0", "1.0", "2.0"]));
}

fn pip_install(clients: &Clients, target: &Path, index: &str) -> std::process::Command {
    let mut cmd = clients.pip();
    cmd.arg("--python").arg(target).args(["install", "--index-url", index, "fixture-app"]);
    cmd
}

fn uv_install(clients: &Clients, target: &Path, index: &str) -> std::process::Command {
    let mut cmd = clients.uv();
    cmd.args(["pip", "install", "--python"]).arg(target).args(["--index-url", index, "fixture-app"]);
    cmd
}

/// Upstream requests for whole resources, counted by path. Range requests
/// (a wheel's core metadata read from its zip directory) fetch a part and
/// are left out.
fn counts(upstream: &FixtureUpstream) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in upstream.seen().into_iter().filter(|s| s.range.is_none()) {
        *out.entry(s.path).or_default() += 1;
    }
    out
}

/// The cold install fetched each needed page and file from the upstream
/// exactly once (whole: see [`counts`]), and never the files no client needs.
#[track_caller]
fn assert_cold_counts(upstream: &FixtureUpstream, tree: &Tree) {
    let by_path = counts(upstream);
    for project in ["fixture-app", "fixture-lib", "fixture-src"] {
        assert_eq!(
            upstream.count(&FixtureUpstream::page_path(project)),
            1,
            "page of {project}: {}",
            upstream.describe_seen()
        );
    }
    for name in [APP, LIB2, SRC] {
        assert_eq!(
            by_path.get(&FixtureUpstream::file_path(tree.file(name))).copied().unwrap_or(0),
            1,
            "{name} was not fetched whole from the upstream exactly once: {}",
            upstream.describe_seen()
        );
    }
    for name in [LIB1, LIB3] {
        assert_eq!(
            upstream.count(&FixtureUpstream::file_path(tree.file(name))),
            0,
            "{name} is not needed: {}",
            upstream.describe_seen()
        );
    }
    let repeated: Vec<_> = by_path.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(repeated.is_empty(), "fetched more than once upstream: {repeated:?}");
}

/// The warm requests (log entries from `from` on): served from the store,
/// never a 5xx; pages past their TTL are `stale`.
#[track_caller]
fn assert_warm_log(server: &Server, from: usize) {
    let log = larder_testkit::settled_cache_log(server);
    let warm = &log[from..];
    assert!(!warm.is_empty(), "no requests logged for the warm install");
    let bad: Vec<_> = warm.iter().filter(|l| l.status >= 500 || !matches!(l.cache.as_str(), "hit" | "stale")).collect();
    assert!(bad.is_empty(), "warm install requests not served from the store: {bad:#?}");
    assert!(
        warm.iter().any(|l| l.path.starts_with("/simple/fixture-") && l.cache == "stale"),
        "no page was served stale: {warm:#?}"
    );
    assert!(warm.iter().any(|l| l.path.ends_with(LIB2) && l.status == 200 && l.cache == "hit"), "{warm:#?}");
}

#[test]
fn pip_installs_cold_then_warm_with_the_upstream_stopped() {
    let (tree, upstream) = tree_upstream(UpstreamFormat::Negotiate, true);
    let data = temp_dir("install-pip-data");
    // Pages are fresh for 2 s; the warm install comes after that, so its
    // pages must be revalidated, fail, and be served stale.
    let server = serve(data.path(), &upstream, &["--page-ttl", "2s", "--upstream-retries", "1"]);
    let index = server.url("/simple/").to_string();

    let cold = Clients::new();
    let target = cold.target_venv("cold");
    run_ok(&mut pip_install(&cold, &target, &index));
    assert_right_tree_installed(&cold, &target);
    assert_cold_counts(&upstream, &tree);
    for name in [APP, LIB2] {
        assert_eq!(
            upstream.count(&FixtureUpstream::metadata_path(tree.file(name))),
            1,
            "{name}.metadata: {}",
            upstream.describe_seen()
        );
    }

    drop(upstream);
    std::thread::sleep(Duration::from_millis(2100));
    let from = larder_testkit::settled_cache_log(&server).len();
    let warm = Clients::new();
    let target = warm.target_venv("warm");
    run_ok(&mut pip_install(&warm, &target, &index));
    assert_right_tree_installed(&warm, &target);
    assert_warm_log(&server, from);
    let r = server.get("/simple/fixture-lib/").header("Accept", PIP_ACCEPT).send();
    r.assert_status(200);
    assert_eq!(r.header("x-larder-cache"), Some("stale"), "{}", r.describe());
}

#[test]
fn uv_installs_cold_then_warm_with_the_upstream_stopped() {
    // The plainest upstream: PEP 503 HTML with relative links, no .metadata.
    let (tree, upstream) = tree_upstream(UpstreamFormat::Html, false);
    let data = temp_dir("install-uv-data");
    let server = serve(data.path(), &upstream, &["--page-ttl", "2s", "--upstream-retries", "1"]);
    let index = server.url("/simple/").to_string();

    let cold = Clients::new();
    let target = cold.target_venv("cold");
    run_ok(&mut uv_install(&cold, &target, &index));
    assert_right_tree_installed(&cold, &target);
    assert_cold_counts(&upstream, &tree);

    drop(upstream);
    std::thread::sleep(Duration::from_millis(2100));
    let from = larder_testkit::settled_cache_log(&server).len();
    let warm = Clients::new();
    let target = warm.target_venv("warm");
    run_ok(&mut uv_install(&warm, &target, &index));
    assert_right_tree_installed(&warm, &target);
    assert_warm_log(&server, from);

    // A restarted larder on the same data dir serves it too.
    drop(server);
    let server =
        larder().serve_with(data.path(), &["--upstream", "http://127.0.0.1:9/simple/", "--upstream-retries", "0"]);
    let index = server.url("/simple/").to_string();
    let again = Clients::new();
    let target = again.target_venv("restarted");
    run_ok(&mut uv_install(&again, &target, &index));
    assert_right_tree_installed(&again, &target);
    let log = larder_testkit::settled_cache_log(&server);
    assert!(log.iter().all(|l| l.status < 500), "{log:#?}");
}

// ------------------------------------------------------------ concurrency --

#[test]
fn eight_concurrent_cold_pip_installs_fetch_everything_once() {
    let dir = temp_dir("eight-fx");
    let d = dir.path();
    // Wheels only (building an sdist eight times over would only add time).
    let files = vec![
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib>=1.0").requires_dist("fixture-util").build(d),
        Wheel::new("fixture-lib", "1.0").build(d),
        Wheel::new("fixture-lib", "2.0").build(d),
        Wheel::new("fixture-util", "1.0").requires_dist("fixture-lib<3").build(d),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Negotiate, &files);
    upstream.set_serve_metadata(true);
    // Slow upstream: the clients' requests overlap in larder.
    upstream.set_page_delay(Duration::from_millis(1000));
    for f in &files {
        upstream.hold_file(&f.filename, Duration::from_millis(500));
    }
    let data = temp_dir("eight-data");
    let server = serve(data.path(), &upstream, &[]);
    let index = server.url("/simple/").to_string();

    const N: usize = 8;
    let clients: Vec<Clients> = (0..N).map(|_| Clients::new()).collect();
    let targets: Vec<PathBuf> = clients.iter().map(|c| c.target_venv("target")).collect();
    let children: Vec<_> = clients
        .iter()
        .zip(&targets)
        .map(|(c, t)| {
            let mut cmd = pip_install(c, t, &index);
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn pip")
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "pip #{i} failed:\n{}", describe_output(out));
    }
    for (c, t) in clients.iter().zip(&targets) {
        let out = run_ok(c.command(t).args([
            "-c",
            "import importlib.metadata as m, fixture_app, fixture_lib, fixture_util; \
             print(m.version('fixture-app'), m.version('fixture-lib'), m.version('fixture-util'))",
        ]));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.0 2.0 1.0");
    }

    let by_path = counts(&upstream);
    let repeated: Vec<_> = by_path.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "fetched more than once upstream by 8 concurrent installs: {repeated:?}\n{}",
        upstream.describe_seen()
    );
    for path in [
        FixtureUpstream::page_path("fixture-app"),
        FixtureUpstream::page_path("fixture-lib"),
        FixtureUpstream::page_path("fixture-util"),
        FixtureUpstream::file_path(&files[0]),
        FixtureUpstream::file_path(&files[2]),
        FixtureUpstream::file_path(&files[3]),
    ] {
        assert_eq!(by_path.get(&path), Some(&1), "{path}: {by_path:?}");
    }
    let log = larder_testkit::settled_cache_log(&server);
    // The installs overlapped: requests for pages waited for the one
    // (delayed) upstream fetch instead of making their own: they were
    // answered from the store (`hit`), but only after 50 ms or more (a
    // plain hit takes a few milliseconds). pip start-up is staggered under
    // load, so this is required of the pages together, not of each.
    let waited = log
        .iter()
        .filter(|l| l.path.starts_with("/simple/fixture-") && l.cache == "hit" && l.micros.is_some_and(|m| m >= 50_000))
        .count();
    assert!(waited >= 2, "the installs did not overlap; test is void: {log:#?}");
    assert!(log.iter().all(|l| l.status < 400), "{:#?}", log.iter().filter(|l| l.status >= 400).collect::<Vec<_>>());
}
