//! `larder exec --url URL -- COMMAND...`: the command runs with pip and uv
//! pointed at larder through the environment, including the build
//! isolation environments in which pip and uv build an sdist; its exit
//! status is the command's; nothing else in the environment is lost and no
//! file changes.
//!
//! The sdist fixture (`fixture-built` 1.0) has NO in-tree backend: its
//! `pyproject.toml` says `requires = ["fixture-backend-pkg"]`,
//! `build-backend = "fixture_backend"`, and that module exists only in the
//! wheel `fixture-backend-pkg` 1.0 served by the same larder. So the sdist
//! builds only if the build environment fetched the backend from larder,
//! which larder's request log then shows.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use larder_testkit::client::{BackendSdist, Snapshot, closed_index_url, installed_version};

const SDIST: &str = "fixture_built-1.0.tar.gz";
const BACKEND_WHEEL: &str = "fixture_backend_pkg-1.0-py3-none-any.whl";

fn fixtures(dir: &Path) -> Vec<Built> {
    let sdist = BackendSdist::new("fixture-built", "1.0", "fixture-backend-pkg", "fixture_backend");
    vec![sdist.build(dir), sdist.backend_wheel("1.0").build(dir)]
}

fn larder_bin() -> &'static str {
    env!("CARGO_BIN_EXE_larder")
}

/// A directory holding a better `fixture-built` (9.0 wheel): what an
/// inherited PIP_FIND_LINKS / UV_FIND_LINKS would install.
fn find_links_dir() -> TempDir {
    let dir = temp_dir("exec-find-links");
    Wheel::new("fixture-built", "9.0").build(dir.path());
    dir
}

/// `larder exec ...` in the clients' isolated environment with a PATH of
/// the test venv and the system directories only (pip runs `rustc
/// --version` for its User-Agent, and a rustup proxy would write ~/.rustup
/// into the sandbox HOME), and with variables that would send pip and uv
/// elsewhere, which `larder exec` must clear.
fn exec_command(clients: &Clients, find_links: &Path, url: &str) -> Command {
    let mut cmd = clients.command(larder_bin());
    let mut path = OsString::from(clients.venv().root().join("bin"));
    path.push(":/usr/bin:/bin");
    let closed = closed_index_url();
    cmd.env("PATH", path)
        .env("PIP_FIND_LINKS", find_links)
        .env("UV_FIND_LINKS", find_links)
        .env("PIP_EXTRA_INDEX_URL", closed.as_str())
        .env("UV_INDEX", closed.as_str())
        .env("UV_INDEX_URL", closed.as_str())
        .args(["exec", "--url", url, "--"]);
    cmd
}

/// What the request log must show: the sdist and the backend wheel GET
/// from larder with 200.
#[track_caller]
fn assert_backend_came_from_larder(server: &Server) {
    let got = |log: &[RequestLog], file: &str| {
        log.iter().any(|r| r.method == "GET" && r.path.ends_with(file) && r.status == 200)
    };
    let log = server.wait_for_log(Duration::from_secs(5), |log| got(log, SDIST) && got(log, BACKEND_WHEEL));
    assert!(got(&log, SDIST), "the sdist was not downloaded from larder: {log:#?}");
    assert!(
        got(&log, BACKEND_WHEEL),
        "the build backend wheel was not downloaded from larder (the build environment did not use larder): {log:#?}"
    );
    assert!(
        log.iter().any(|r| r.path == "/simple/fixture-backend-pkg/" && r.status == 200),
        "no page request for the build dependency: {log:#?}"
    );
}

/// The sdist was built (by the backend from the index) and installed; the
/// backend itself stayed in the isolated build environment.
#[track_caller]
fn assert_built_and_installed(clients: &Clients, target: &Path) {
    assert_eq!(installed_version(clients, target, "fixture-built").as_deref(), Some("1.0"));
    let out = run_ok(clients.command(target).arg("-c").arg("import fixture_built; print(fixture_built.BUILT_BY)"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fixture-backend-pkg");
    assert_eq!(
        installed_version(clients, target, "fixture-backend-pkg"),
        None,
        "the build backend belongs in the build environment, not the target"
    );
}

fn sandbox_state(clients: &Clients) -> Vec<(PathBuf, Snapshot)> {
    ["home", "xdg-config", "work"]
        .iter()
        .map(|d| {
            let p = clients.state_dir().join(d);
            let s = Snapshot::of(&p);
            (p, s)
        })
        .collect()
}

#[track_caller]
fn assert_unchanged(before: &[(PathBuf, Snapshot)], clients: &Clients) {
    for ((path, was), (_, now)) in before.iter().zip(sandbox_state(clients)) {
        let diff = was.diff(&now);
        assert!(diff.is_empty(), "larder exec changed {}:\n{}", path.display(), diff.join("\n"));
    }
}

#[test]
fn exec_pip_builds_an_sdist_whose_build_backend_comes_from_larder() {
    let clients = Clients::new();
    let env = Env::new("exec-pip", fixtures);
    let url = env.server.url("/simple/").to_string();
    let find_links = find_links_dir();
    let target = clients.target_venv("target");
    let before = sandbox_state(&clients);

    run_ok(
        exec_command(&clients, find_links.path(), &url)
            .args(["python", "-m", "pip", "--python"])
            .arg(&target)
            .args(["install", "fixture-built"]),
    );
    assert_built_and_installed(&clients, &target);
    assert_backend_came_from_larder(&env.server);
    assert_unchanged(&before, &clients);
}

#[test]
fn exec_uv_builds_an_sdist_whose_build_backend_comes_from_larder() {
    let clients = Clients::new();
    let env = Env::new("exec-uv", fixtures);
    let url = env.server.url("/simple/").to_string();
    let find_links = find_links_dir();
    let target = clients.target_venv("target");
    let before = sandbox_state(&clients);

    run_ok(
        exec_command(&clients, find_links.path(), &url)
            .args(["uv", "pip", "install", "--python"])
            .arg(&target)
            .arg("fixture-built"),
    );
    assert_built_and_installed(&clients, &target);
    assert_backend_came_from_larder(&env.server);
    assert_unchanged(&before, &clients);
}

/// Control for the two tests above: without `larder exec`, the same pip
/// command (index on a closed port) cannot fetch the build backend, so the
/// build does not happen and nothing is installed.
#[test]
fn without_exec_the_sdist_cannot_be_built() {
    let clients = Clients::new();
    let env = Env::new("exec-control", fixtures);
    let target = clients.target_venv("target");
    let closed = closed_index_url();
    // The sdist itself is given as a file, so only its build dependency
    // needs an index.
    let out = run_fails(
        clients
            .pip()
            .arg("--python")
            .arg(&target)
            .args(["install", "--retries", "0", "--index-url", closed.as_str()])
            .arg(&env.file(SDIST).path),
    );
    let output = describe_output(&out);
    assert!(
        output.contains("fixture-backend-pkg") && output.contains("build dependencies"),
        "expected a failure to install the build dependency: {output}"
    );
    assert_eq!(installed_version(&clients, &target, "fixture-built"), None);
}

#[test]
fn exec_exits_with_the_commands_status() {
    let url = "http://127.0.0.1:9/simple/";
    let status = |args: &[&str]| {
        Command::new(larder_bin())
            .args(["exec", "--url", url, "--"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run larder exec")
            .status
    };
    assert_eq!(status(&["sh", "-c", "exit 7"]).code(), Some(7));
    assert_eq!(status(&["sh", "-c", "exit 0"]).code(), Some(0));
    assert_eq!(status(&["false"]).code(), Some(1));
    // A command killed by a signal: the shell convention, 128 + signal.
    assert_eq!(status(&["sh", "-c", "kill -TERM $$"]).code(), Some(128 + 15));
    // A command that does not exist: larder says so and fails.
    let out = Command::new(larder_bin())
        .args(["exec", "--url", url, "--", "/nonexistent/larder-test-command"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/larder-test-command"),
        "{}",
        describe_output(&out)
    );
}

/// The environment inside `larder exec`, starting from the ambient one
/// (whatever this machine exports) plus variables that would point pip and
/// uv elsewhere.
#[test]
fn exec_sets_the_index_variables_and_clears_the_other_sources() {
    let python = TestVenv::from_env().python();
    let out = run_ok(
        Command::new(larder_bin())
            .args(["exec", "--url", "http://127.0.0.1:3141/simple", "--retries", "2", "--timeout", "30", "--"])
            .arg(&python)
            .args(["-c", "import json, os; print(json.dumps(dict(os.environ)))"])
            .env("PIP_FIND_LINKS", "/opt/wheels")
            .env("UV_FIND_LINKS", "/opt/wheels")
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/elsewhere/")
            .env("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/extra/")
            .env("UV_INDEX", "http://127.0.0.1:9/uv-extra/")
            .env("UV_INDEX_URL", "http://127.0.0.1:9/uv-legacy/")
            .env("UV_EXTRA_INDEX_URL", "http://127.0.0.1:9/uv-legacy-extra/")
            .env("PIP_NO_INDEX", "1")
            .env("UV_NO_INDEX", "1")
            .env("LARDER_TEST_UNRELATED", "kept")
            .env_remove("PIP_TRUSTED_HOST"),
    );
    let inside: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).expect("JSON environment");
    let url = "http://127.0.0.1:3141/simple/";
    let get = |k: &str| inside.get(k).map(String::as_str);
    assert_eq!(get("PIP_INDEX_URL"), Some(url), "{inside:#?}");
    assert_eq!(get("UV_DEFAULT_INDEX"), Some(url), "{inside:#?}");
    assert_eq!(get("PIP_TRUSTED_HOST"), Some("127.0.0.1:3141"), "{inside:#?}");
    assert_eq!(get("UV_INSECURE_HOST"), Some("127.0.0.1:3141"), "{inside:#?}");
    assert_eq!(get("PIP_RETRIES"), Some("2"), "{inside:#?}");
    assert_eq!(get("UV_HTTP_RETRIES"), Some("2"), "{inside:#?}");
    assert_eq!(get("PIP_TIMEOUT"), Some("30"), "{inside:#?}");
    assert_eq!(get("UV_HTTP_TIMEOUT"), Some("30"), "{inside:#?}");
    for gone in [
        "PIP_FIND_LINKS",
        "UV_FIND_LINKS",
        "PIP_EXTRA_INDEX_URL",
        "UV_INDEX",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "PIP_NO_INDEX",
        "UV_NO_INDEX",
    ] {
        assert_eq!(get(gone), None, "{gone} leaked into larder exec: {inside:#?}");
    }
    assert_eq!(get("LARDER_TEST_UNRELATED"), Some("kept"));
    assert_eq!(get("PATH"), std::env::var("PATH").ok().as_deref(), "PATH is passed through");
}

#[test]
fn exec_help_names_every_variable_it_sets_or_drops() {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_larder")).args(["exec", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    let everything = larder_client::ClientSettings {
        urls: vec!["http://127.0.0.1:1/simple/".parse().unwrap(), "http://127.0.0.1:2/simple/".parse().unwrap()],
        cert: Some(PathBuf::from("/ca.pem")),
        retries: Some(1),
        timeout: Some(1),
    };
    for (name, _) in larder_client::environment(&everything) {
        assert!(help.contains(&name), "`larder exec --help` does not name {name}: {help}");
    }
    assert!(help.contains("Sets:") && help.contains("Drops"), "{help}");
}
