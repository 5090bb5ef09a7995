//! Real pip and real uv (the pinned versions in `.venv-test`, made by
//! `scripts/test`) install a small dependency tree from `larder serve`:
//!
//! - `fixture-app` 1.0 (wheel) requires `fixture-lib>=1.0` and `fixture-src`;
//! - `fixture-lib` 1.0 and 2.0 wheels (2.0: `Requires-Python >=3.8`), and a
//!   3.0 wheel with `Requires-Python >=4` that no Python 3 may pick;
//! - `fixture-src` 1.0, sdist only (built by its in-tree PEP 517 backend),
//!   requiring `fixture-lib<3`.
//!
//! The right install is app 1.0, lib 2.0, src 1.0. The tests also read
//! larder's JSON request log to check that the clients resolved with
//! PEP 658 metadata (`*.whl.metadata`) rather than by downloading wheels.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const APP: &str = "fixture_app-1.0-py3-none-any.whl";
const LIB1: &str = "fixture_lib-1.0-py3-none-any.whl";
const LIB2: &str = "fixture_lib-2.0-py3-none-any.whl";
const LIB3: &str = "fixture_lib-3.0-py3-none-any.whl";
const SRC: &str = "fixture_src-1.0.tar.gz";

fn tree(dir: &Path) -> Vec<Built> {
    vec![
        Wheel::new("fixture-app", "1.0")
            .requires_dist("fixture-lib>=1.0")
            .requires_dist("fixture-src")
            .module_source("from fixture_lib import __version__ as LIB_VERSION\n")
            .build(dir),
        Wheel::new("fixture-lib", "1.0").build(dir),
        Wheel::new("fixture-lib", "2.0").requires_python(">=3.8").build(dir),
        Wheel::new("fixture-lib", "3.0").requires_python(">=4").build(dir),
        Sdist::new("fixture-src", "1.0").requires_dist("fixture-lib<3").build(dir),
    ]
}

struct E2e {
    env: Env,
    clients: Clients,
}

impl E2e {
    fn new(label: &str) -> E2e {
        // Locate the tools first: a missing venv fails before anything runs.
        let clients = Clients::new();
        E2e { env: Env::new(label, tree), clients }
    }

    fn index_url(&self) -> String {
        self.env.server.url("/simple/").to_string()
    }

    fn server(&self) -> &Server {
        &self.env.server
    }

    /// Writes a requirements file pinning the three packages to the
    /// hashes given (filename → sha256).
    fn requirements_with_hashes(&self, name: &str, lib_hash: &str) -> PathBuf {
        let path = self.clients.work_dir().join(name);
        let text = format!(
            "fixture-app==1.0 --hash=sha256:{}\nfixture-lib==2.0 --hash=sha256:{lib_hash}\nfixture-src==1.0 --hash=sha256:{}\n",
            self.env.file(APP).sha256,
            self.env.file(SRC).sha256,
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The request log once it shows every path in `paths` fetched with 200
    /// (or after 5 s).
    fn log_after(&self, paths_ending: &[String]) -> Vec<RequestLog> {
        self.server().wait_for_log(Duration::from_secs(5), |log| {
            paths_ending.iter().all(|p| log.iter().any(|r| r.path.ends_with(p.as_str()) && r.status == 200))
        })
    }
}

/// The versions importlib.metadata reports in `python`'s environment, and
/// a check that the modules import.
fn installed_versions(clients: &Clients, python: &Path) -> Value {
    let script = r#"
import importlib.metadata as m, json
out = {}
for dist in ["fixture-app", "fixture-lib", "fixture-src"]:
    try:
        out[dist] = m.version(dist)
    except m.PackageNotFoundError:
        out[dist] = None
import fixture_app, fixture_lib, fixture_src
out["modules"] = [fixture_app.__version__, fixture_lib.__version__, fixture_src.__version__, fixture_app.LIB_VERSION]
print(json.dumps(out))
"#;
    let out = run_ok(clients.command(python).arg("-c").arg(script));
    serde_json::from_slice(&out.stdout).expect("JSON from the version script")
}

#[track_caller]
fn assert_right_tree_installed(clients: &Clients, python: &Path) {
    let got = installed_versions(clients, python);
    assert_eq!(
        got,
        serde_json::json!({
            "fixture-app": "1.0",
            "fixture-lib": "2.0",
            "fixture-src": "1.0",
            "modules": ["1.0", "2.0", "1.0", "2.0"],
        })
    );
}

#[track_caller]
fn assert_nothing_installed(clients: &Clients, python: &Path) {
    for module in ["fixture_app", "fixture_lib", "fixture_src"] {
        let out = run(clients.command(python).arg("-c").arg(format!("import {module}")));
        assert!(!out.status.success(), "{module} was installed although the install failed");
    }
}

fn fetched(log: &[RequestLog], filename_suffix: &str) -> bool {
    log.iter().any(|r| r.method == "GET" && r.path.ends_with(filename_suffix) && r.status == 200)
}

fn requested(log: &[RequestLog], filename_suffix: &str) -> bool {
    log.iter().any(|r| r.path.ends_with(filename_suffix))
}

fn wheel_downloads(log: &[RequestLog]) -> Vec<&RequestLog> {
    log.iter().filter(|r| r.path.ends_with(".whl")).collect()
}

// ------------------------------------------------------------------ pip --

#[test]
fn pip_installs_the_tree() {
    let t = E2e::new("e2e-pip");
    let target = t.clients.target_venv("target");
    run_ok(t.clients.pip().arg("--python").arg(&target).args([
        "install",
        "--index-url",
        &t.index_url(),
        "fixture-app",
    ]));
    assert_right_tree_installed(&t.clients, &target);

    let log =
        t.log_after(&[format!("{APP}.metadata"), format!("{LIB2}.metadata"), APP.into(), LIB2.into(), SRC.into()]);
    // pip resolved with PEP 658 metadata, then downloaded what it installs.
    for suffix in [format!("{APP}.metadata"), format!("{LIB2}.metadata"), APP.into(), LIB2.into(), SRC.into()] {
        assert!(fetched(&log, &suffix), "pip did not GET *{suffix}; request log: {log:#?}");
    }
    // Requires-Python kept 3.0 out of consideration, and 1.0 was never needed.
    for suffix in [LIB3.to_owned(), format!("{LIB3}.metadata"), LIB1.into()] {
        assert!(!requested(&log, &suffix), "pip requested *{suffix}; request log: {log:#?}");
    }
    // pip asked for JSON pages (its Accept prefers PEP 691).
    assert!(fetched(&log, "/simple/fixture-app/"), "no page request for fixture-app: {log:#?}");
}

#[test]
fn pip_dry_run_resolves_from_metadata_only() {
    let t = E2e::new("e2e-pip-dry");
    let target = t.clients.target_venv("target");
    let report = t.clients.work_dir().join("report.json");
    run_ok(
        t.clients.pip().arg("--python").arg(&target).args(["install", "--dry-run", "--report"]).arg(&report).args([
            "--index-url",
            &t.index_url(),
            "fixture-app",
        ]),
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mut resolved: Vec<(String, String)> = report["install"]
        .as_array()
        .expect("install[] in pip's report")
        .iter()
        .map(|i| {
            (normalize(i["metadata"]["name"].as_str().unwrap()), i["metadata"]["version"].as_str().unwrap().to_owned())
        })
        .collect();
    resolved.sort();
    assert_eq!(
        resolved,
        vec![
            ("fixture-app".to_owned(), "1.0".to_owned()),
            ("fixture-lib".to_owned(), "2.0".to_owned()),
            ("fixture-src".to_owned(), "1.0".to_owned())
        ]
    );
    let log = t.log_after(&[format!("{APP}.metadata"), format!("{LIB2}.metadata")]);
    for suffix in [format!("{APP}.metadata"), format!("{LIB2}.metadata")] {
        assert!(fetched(&log, &suffix), "pip did not GET *{suffix}; request log: {log:#?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = t.server().request_log();
    assert!(wheel_downloads(&log).is_empty(), "pip --dry-run downloaded wheels despite PEP 658 metadata: {log:#?}");
    assert_nothing_installed(&t.clients, &target);
}

#[test]
fn pip_require_hashes() {
    let t = E2e::new("e2e-pip-hashes");
    // Right hashes: installs.
    let good = t.requirements_with_hashes("good.txt", &t.env.file(LIB2).sha256);
    let target = t.clients.target_venv("good");
    run_ok(
        t.clients
            .pip()
            .arg("--python")
            .arg(&target)
            .args(["install", "--require-hashes", "--index-url", &t.index_url(), "-r"])
            .arg(&good),
    );
    assert_right_tree_installed(&t.clients, &target);

    // A wrong hash for fixture-lib (another file's): refused, nothing installed.
    let bad = t.requirements_with_hashes("bad.txt", &t.env.file(LIB1).sha256);
    let target = t.clients.target_venv("bad");
    let out = run_fails(
        t.clients
            .pip()
            .arg("--python")
            .arg(&target)
            .args(["install", "--require-hashes", "--index-url", &t.index_url(), "-r"])
            .arg(&bad),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(stderr.contains("hash"), "pip failed, but not over hashes: {}", describe_output(&out));
    assert_nothing_installed(&t.clients, &target);
}

// ------------------------------------------------------------------- uv --

#[test]
fn uv_installs_the_tree() {
    let t = E2e::new("e2e-uv");
    let target = t.clients.target_venv("target");
    run_ok(t.clients.uv().args(["pip", "install", "--python"]).arg(&target).args([
        "--index-url",
        &t.index_url(),
        "fixture-app",
    ]));
    assert_right_tree_installed(&t.clients, &target);
    let log = t.log_after(&[APP.into(), LIB2.into(), SRC.into()]);
    for suffix in [APP, LIB2, SRC] {
        assert!(fetched(&log, suffix), "uv did not GET *{suffix}; request log: {log:#?}");
    }
    for suffix in [LIB3.to_owned(), format!("{LIB3}.metadata"), LIB1.into()] {
        assert!(!requested(&log, &suffix), "uv requested *{suffix}; request log: {log:#?}");
    }
}

#[test]
fn uv_compile_resolves_from_metadata_only() {
    let t = E2e::new("e2e-uv-compile");
    let input = t.clients.work_dir().join("requirements.in");
    std::fs::write(&input, "fixture-app\n").unwrap();
    let out = run_ok(t.clients.uv().args(["pip", "compile", "--no-header", "--index-url", &t.index_url()]).arg(&input));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut pins: Vec<&str> = stdout.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    pins.sort();
    assert_eq!(
        pins,
        vec!["fixture-app==1.0", "fixture-lib==2.0", "fixture-src==1.0"],
        "uv pip compile output:\n{stdout}"
    );

    let log = t.log_after(&[format!("{APP}.metadata"), format!("{LIB2}.metadata")]);
    for suffix in [format!("{APP}.metadata"), format!("{LIB2}.metadata")] {
        assert!(fetched(&log, &suffix), "uv did not GET *{suffix}; request log: {log:#?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = t.server().request_log();
    assert!(
        wheel_downloads(&log).is_empty(),
        "uv pip compile fetched wheels (or ranges of them) instead of using PEP 658 metadata: {log:#?}"
    );
}

#[test]
fn uv_require_hashes() {
    let t = E2e::new("e2e-uv-hashes");
    let good = t.requirements_with_hashes("good.txt", &t.env.file(LIB2).sha256);
    let target = t.clients.target_venv("good");
    run_ok(
        t.clients
            .uv()
            .args(["pip", "install", "--require-hashes", "--python"])
            .arg(&target)
            .args(["--index-url", &t.index_url(), "-r"])
            .arg(&good),
    );
    assert_right_tree_installed(&t.clients, &target);

    let bad = t.requirements_with_hashes("bad.txt", &t.env.file(LIB1).sha256);
    let target = t.clients.target_venv("bad");
    let out = run_fails(
        t.clients
            .uv()
            .args(["pip", "install", "--require-hashes", "--python"])
            .arg(&target)
            .args(["--index-url", &t.index_url(), "-r"])
            .arg(&bad),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(stderr.contains("hash"), "uv failed, but not over hashes: {}", describe_output(&out));
    assert_nothing_installed(&t.clients, &target);
}
