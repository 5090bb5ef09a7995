//! Shared helpers for larder's integration tests (each test file does
//! `mod common;`). The harness itself lives in the `larder-testkit` crate.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

pub use larder_testkit::*;
pub use serde_json::Value;
pub use tempfile::TempDir;

/// PEP 691 JSON.
pub const JSON: &str = "application/vnd.pypi.simple.v1+json";
/// PEP 691 HTML.
pub const V1_HTML: &str = "application/vnd.pypi.simple.v1+html";
/// What pip sends.
pub const PIP_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
/// What uv sends.
pub const UV_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The binary under test.
pub fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

/// A hosted index `team`, an upload token for it and a `larder serve` over
/// the data directory: where the publishing clients' tests upload.
/// Field order matters: the server is killed before the directory goes.
pub struct TeamIndex {
    pub server: Server,
    pub token: String,
    pub data_dir: TempDir,
}

impl TeamIndex {
    /// Creates the index and the token with the CLI, then serves.
    pub fn start() -> TeamIndex {
        let data_dir = temp_dir("team-index");
        let larder_ok = |args: &[&str]| {
            let out = run_ok(larder().command().args(args).arg("--data-dir").arg(data_dir.path()));
            String::from_utf8(out.stdout).expect("UTF-8 output")
        };
        larder_ok(&["index", "create", "team"]);
        let token = larder_ok(&["token", "create", "--index", "team", "--scope", "upload"]).trim().to_owned();
        let server = larder().serve_with(data_dir.path(), &["--min-free-space", "0"]);
        TeamIndex { server, token, data_dir }
    }
}

/// The filenames listed on `project`'s page of the `team` index, sorted.
pub fn team_listed(server: &Server, project: &str) -> Vec<String> {
    let page = server.get(&format!("/team/simple/{project}/")).header("Accept", JSON).send();
    json_filenames(&page.assert_status(200).json())
}

/// A data directory filled by `larder add` and a `larder serve` over it.
/// Field order matters: the server is killed before the directories go.
pub struct Env {
    pub server: Server,
    pub files: Vec<Built>,
    pub data_dir: TempDir,
    pub fixture_dir: TempDir,
}

impl Env {
    /// Builds fixtures with `build(dir)`, adds them all in one `larder add`
    /// of the fixture directory, and serves the data directory.
    pub fn new(label: &str, build: impl FnOnce(&Path) -> Vec<Built>) -> Env {
        let fixture_dir = temp_dir(&format!("{label}-fixtures"));
        let data_dir = temp_dir(&format!("{label}-data"));
        let files = build(fixture_dir.path());
        larder().add(data_dir.path(), &[fixture_dir.path()]).assert_success();
        let server = larder().serve(data_dir.path());
        Env { server, files, data_dir, fixture_dir }
    }

    /// The fixture with this filename.
    pub fn file(&self, filename: &str) -> &Built {
        self.files.iter().find(|f| f.filename == filename).unwrap_or_else(|| panic!("no fixture named {filename}"))
    }

    /// The fixtures of one (normalized) project.
    pub fn project_files(&self, project: &str) -> Vec<&Built> {
        self.files.iter().filter(|f| f.project == project).collect()
    }

    /// The distinct normalized project names of the fixtures.
    pub fn projects(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.iter().map(|f| f.project.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The fixture set most HTTP tests use:
///
/// - `fixture-lib`: wheels 1.0, 1.9, 1.10, 2.0rc1, 2.0 (2.0 has
///   `Requires-Python: >=3.8,<4`) and an sdist 1.0 (`Requires-Python: >=3.7`);
/// - `fixture-app` 1.0 wheel requiring `fixture-lib>=1.0`;
/// - `fixture-src` 1.0, sdist only;
/// - `Fixture.Mixed_Case` 1.0 wheel (normalized `fixture-mixed-case`).
pub fn standard_fixtures(dir: &Path) -> Vec<Built> {
    vec![
        Wheel::new("fixture-lib", "1.0").build(dir),
        Wheel::new("fixture-lib", "1.9").build(dir),
        Wheel::new("fixture-lib", "1.10").build(dir),
        Wheel::new("fixture-lib", "2.0rc1").build(dir),
        Wheel::new("fixture-lib", "2.0").requires_python(">=3.8,<4").build(dir),
        Sdist::new("fixture-lib", "1.0").requires_python(">=3.7").build(dir),
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib>=1.0").build(dir),
        Sdist::new("fixture-src", "1.0").build(dir),
        Wheel::new("Fixture.Mixed_Case", "1.0").build(dir),
    ]
}

/// GETs `/simple/<project>/` as PEP 691 JSON, asserting 200.
pub fn json_page(server: &Server, project: &str) -> Value {
    let r = server.get(&format!("/simple/{project}/")).header("Accept", JSON).send();
    r.assert_status(200);
    r.json()
}

/// GETs `/simple/<project>/` as `text/html`, asserting 200.
pub fn html_page(server: &Server, project: &str) -> String {
    let r = server.get(&format!("/simple/{project}/")).header("Accept", "text/html").send();
    r.assert_status(200);
    r.text()
}

/// The `files[]` entry named `filename` in a JSON project page.
pub fn json_file<'a>(page: &'a Value, filename: &str) -> &'a Value {
    page["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files[] in {page}"))
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap_or_else(|| panic!("{filename} not in page {page}"))
}

/// The filenames listed in a JSON project page, sorted.
pub fn json_filenames(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files[] in {page}"))
        .iter()
        .map(|f| f["filename"].as_str().expect("filename is a string").to_owned())
        .collect();
    names.sort();
    names
}

/// The absolute download URL of `filename`, resolved against the page URL.
pub fn file_url(server: &Server, project: &str, filename: &str) -> Url {
    let page = json_page(server, project);
    let url = json_file(&page, filename)["url"].as_str().expect("url is a string").to_owned();
    resolve(&server.url(&format!("/simple/{project}/")), &url)
}

/// The request target (path and query) of a URL on the server.
pub fn target_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses an `api-version` / `pypi:repository-version` value `MAJOR.MINOR`.
pub fn parse_api_version(text: &str) -> (u32, u32) {
    let (major, minor) = text.split_once('.').unwrap_or_else(|| panic!("api version {text:?} is not MAJOR.MINOR"));
    (
        major.parse().unwrap_or_else(|_| panic!("bad api version {text:?}")),
        minor.parse().unwrap_or_else(|_| panic!("bad api version {text:?}")),
    )
}

/// Asserts the JSON `meta.api-version` is a string of at least 1.1.
#[track_caller]
pub fn assert_api_version_at_least_1_1(page: &Value) {
    let v = page["meta"]["api-version"].as_str().unwrap_or_else(|| panic!("meta.api-version is not a string: {page}"));
    let (major, minor) = parse_api_version(v);
    assert!(major == 1 && minor >= 1, "api-version {v} is not 1.1 or later");
}

/// Asserts the response carries `Vary: Accept` (as one token of possibly
/// several `Vary` headers).
#[track_caller]
pub fn assert_vary_accept(r: &Response) {
    let has = r.header_all("vary").iter().any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("accept")));
    assert!(has, "{}: no `Vary: Accept`: {:?}", r.request, r.headers);
}

/// Asserts `X-PyPI-Last-Serial` is present and an integer; returns it.
#[track_caller]
pub fn last_serial(r: &Response) -> u64 {
    let v = r.expect_header("x-pypi-last-serial");
    v.parse().unwrap_or_else(|_| panic!("{}: X-PyPI-Last-Serial {v:?} is not an integer", r.request))
}
