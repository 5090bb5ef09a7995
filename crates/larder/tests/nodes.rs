//! Several larder nodes on one PostgreSQL database and one S3 bucket
//! (issue 16), the real servers that `scripts/test` starts, each node with
//! a data directory of its own: they start together on a fresh database
//! (taking turns for the migrations), and what one node changes (an index
//! defined, an upload, a yank, a delete) shows on the others' pages and
//! file URLs within a second, although each keeps pages and file lookups
//! in memory.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use larder_testkit::servers::TestDatabase;

/// How soon a change made on one node must show on another.
const COHERENT_WITHIN: Duration = Duration::from_secs(1);

/// Larder nodes sharing one database and one bucket prefix.
struct Cluster {
    nodes: Vec<Server>,
    /// `LARDER_DATABASE`, `LARDER_BLOBS` and the AWS variables.
    env: Vec<(&'static str, String)>,
    dirs: Vec<TempDir>,
    _db: TestDatabase,
}

impl Cluster {
    /// Starts `count` nodes at once on a fresh database and bucket prefix,
    /// each with `extra` arguments.
    fn start(label: &str, count: usize, extra: &[&str]) -> Cluster {
        let db = TestDatabase::create(label);
        let s3 = TestS3::from_env();
        let mut env = s3.aws_env();
        env.push(("LARDER_DATABASE", db.url().to_string()));
        env.push(("LARDER_BLOBS", s3.fresh_prefix(label).to_string()));
        let dirs: Vec<TempDir> = (0..=count).map(|i| temp_dir(&format!("{label}-node{i}"))).collect();
        let mut args = vec!["--min-free-space", "0"];
        args.extend_from_slice(extra);
        let nodes = Server::start_all(dirs[..count].iter().map(|dir| {
            let mut cmd = larder().serve_command(dir.path(), &args);
            cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            cmd
        }));
        Cluster { nodes, env, dirs, _db: db }
    }

    /// `larder ARGS` on the shared backends, as a process of its own.
    fn larder(&self, args: &[&str]) -> Command {
        let mut cmd = larder().command();
        cmd.args(args).arg("--data-dir").arg(self.dirs.last().expect("a spare data dir").path());
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// Runs `larder ARGS` and returns its standard output, trimmed.
    fn larder_ok(&self, args: &[&str]) -> String {
        String::from_utf8(run_ok(&mut self.larder(args)).stdout).unwrap().trim().to_owned()
    }
}

/// Waits (a second at most, counted from now) until `check` holds, and
/// returns how long that took.
#[track_caller]
fn within_a_second(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < COHERENT_WITHIN, "{what}: not seen within {COHERENT_WITHIN:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = started.elapsed();
    eprintln!("{what}: seen after {took:?}");
    took
}

/// The JSON page of `fixture-corp` in index `team` on `node` (null when
/// it has none).
fn team_page(node: &Server) -> Value {
    let response = node.get("/team/simple/fixture-corp/").header("Accept", JSON).send();
    if response.status == 404 { Value::Null } else { response.assert_status(200).json() }
}

/// The entry of `filename` on `page`, if listed.
fn listed<'a>(page: &'a Value, filename: &str) -> Option<&'a Value> {
    page["files"].as_array()?.iter().find(|file| file["filename"] == filename)
}

fn twine_upload(node: &Server, token: &str, wheel: &Built) {
    let clients = Clients::new();
    let out = run(clients
        .twine()
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url"])
        .arg(node.url("/team/").as_str())
        .arg(&wheel.path)
        .env("TWINE_USERNAME", "__token__")
        .env("TWINE_PASSWORD", token));
    assert!(out.status.success(), "{}", describe_output(&out));
}

/// Calls the management API of `fixture-corp` in `team` on `node`.
fn manage(node: &Server, action: &str, token: &str, body: &str) {
    node.request("POST", &format!("/api/team/fixture-corp/{action}"))
        .header("Authorization", &basic_auth(token))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .assert_status(200);
}

#[test]
fn what_one_node_changes_shows_on_the_other_within_a_second() {
    let cluster = Cluster::start("nodes_coherent", 2, &["--offline"]);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let fixtures = temp_dir("nodes-coherent-fx");

    // An index defined by another process.
    assert_eq!(b.get("/team/simple/").send().status, 404, "no index team yet");
    cluster.larder_ok(&["index", "create", "team"]);
    within_a_second("a new index", || b.get("/team/simple/").send().status == 200);
    let upload = cluster.larder_ok(&["token", "create", "--index", "team", "--scope", "upload"]);
    let admin = cluster.larder_ok(&["token", "create", "--index", "team", "--scope", "admin"]);

    // An upload to A: listed by B, and its file served by B from the bucket.
    let one = Wheel::new("fixture-corp", "1.0").build(fixtures.path());
    assert_eq!(team_page(b), Value::Null);
    twine_upload(a, &upload, &one);
    within_a_second("an upload", || listed(&team_page(b), &one.filename).is_some());
    let url = |node: &Server, wheel: &Built| {
        let page = team_page(node);
        resolve(
            &node.url("/team/simple/fixture-corp/"),
            listed(&page, &wheel.filename).unwrap()["url"].as_str().unwrap(),
        )
    };
    assert_eq!(sha256_hex(&b.get_url(&url(b, &one)).send().assert_status(200).body), one.sha256);

    // A second upload while B holds the project's page in memory.
    let two = Wheel::new("fixture-corp", "2.0").build(fixtures.path());
    assert!(listed(&team_page(b), &two.filename).is_none());
    twine_upload(a, &upload, &two);
    within_a_second("a second upload", || listed(&team_page(b), &two.filename).is_some());
    let two_on_b = url(b, &two);
    assert_eq!(sha256_hex(&b.get_url(&two_on_b).send().assert_status(200).body), two.sha256);

    // A yank and a delete through A's API.
    manage(a, "yank", &admin, r#"{"version": "1.0", "reason": "broken"}"#);
    within_a_second("a yank", || listed(&team_page(b), &one.filename).unwrap()["yanked"] == "broken");
    manage(a, "delete", &admin, r#"{"version": "2.0"}"#);
    within_a_second("a delete", || listed(&team_page(b), &two.filename).is_none());
    // B had looked the deleted file up; it no longer serves it.
    within_a_second("a deleted file's URL", || b.get_url(&two_on_b).send().status == 404);
    assert_eq!(sha256_hex(&b.get_url(&url(b, &one)).send().assert_status(200).body), one.sha256);
}
