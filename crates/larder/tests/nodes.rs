//! Several larder nodes on one PostgreSQL database and one S3 bucket
//! (issue 16), the real servers that `scripts/test` starts, each node with
//! a data directory of its own: they start together on a fresh database
//! (taking turns for the migrations), and what one node changes (an index
//! defined, an upload, a yank, a delete) shows on the others' pages and
//! file URLs within a second, although each keeps pages and file lookups
//! in memory; a herd of clients spread over the nodes asking for the same
//! cold files causes one upstream request per file, and a node killed in
//! the middle of a download leaves it to another once its lease expires;
//! two nodes running `larder mirror` at once fetch each file once.

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
        self.larder_in(self.dirs.last().expect("a spare data dir").path(), args)
    }

    /// `larder ARGS --data-dir DATA_DIR` on the shared backends: another
    /// node, with a data directory of its own.
    fn larder_in(&self, data_dir: &std::path::Path, args: &[&str]) -> Command {
        let mut cmd = larder().command();
        cmd.args(args).arg("--data-dir").arg(data_dir);
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

/// The absolute URL of `filename` on `node`'s JSON page `page`.
fn file_url(node: &Server, page: &str, filename: &str) -> Url {
    let body = node.get(page).header("Accept", JSON).send().assert_status(200).json();
    let href = listed(&body, filename).unwrap_or_else(|| panic!("{filename} not on {body}"))["url"].as_str().unwrap();
    resolve(&node.url(page), href)
}

#[test]
fn a_herd_over_two_nodes_causes_one_upstream_request_per_file() {
    let fixtures = temp_dir("nodes-herd-fx");
    let files = [
        Wheel::new("fixture-herd-a", "1.0").module_source(&"# padding\n".repeat(20_000)).build(fixtures.path()),
        Wheel::new("fixture-herd-b", "1.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_serve_metadata(true);
    // Every download takes a while, so the whole herd asks while it runs.
    for file in &files {
        upstream.hold_file(&file.filename, Duration::from_millis(1500));
    }
    let cluster = Cluster::start("nodes_herd", 2, &["--upstream", &upstream.simple_url(), "--upstream-retries", "0"]);
    let page = |file: &Built| format!("/simple/{}/", file.project);
    let urls: Vec<Vec<Url>> = cluster
        .nodes
        .iter()
        .map(|node| files.iter().map(|f| file_url(node, &page(f), &f.filename)).collect())
        .collect();

    const PER_NODE: usize = 8;
    let (metadata, bodies) = std::thread::scope(|scope| {
        let herd = |suffix: &'static str| -> Vec<_> {
            let mut clients = Vec::new();
            for (node, urls) in cluster.nodes.iter().zip(&urls) {
                for (i, url) in urls.iter().enumerate() {
                    for _ in 0..PER_NODE {
                        let url = resolve(url, &format!("{}{suffix}", url.path().rsplit('/').next().unwrap()));
                        clients.push((i, scope.spawn(move || node.get_url(&url).send())));
                    }
                }
            }
            clients.into_iter().map(|(i, client)| (i, client.join().unwrap())).collect()
        };
        (herd(".metadata"), herd(""))
    });
    for (i, response) in &metadata {
        assert!(response.assert_status(200).text().contains(&files[*i].project), "{}", response.describe());
    }
    for (i, response) in &bodies {
        assert_eq!(sha256_hex(&response.assert_status(200).body), files[*i].sha256, "{}", files[*i].filename);
    }
    for file in &files {
        let (fetches, metadata) =
            (upstream.count(&FixtureUpstream::file_path(file)), upstream.count(&FixtureUpstream::metadata_path(file)));
        assert_eq!(
            (fetches, metadata),
            (1, 1),
            "{}: {PER_NODE} clients on each of 2 nodes: {}",
            file.filename,
            upstream.describe_seen()
        );
    }
}

#[test]
fn a_node_killed_mid_download_leaves_it_to_another_once_its_lease_expires() {
    let fixtures = temp_dir("nodes-kill-fx");
    let wheel = Wheel::new("fixture-kill", "1.0").module_source(&"# padding\n".repeat(20_000)).build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&wheel));
    upstream.hold_file(&wheel.filename, Duration::from_secs(60));
    let args = ["--upstream", &upstream.simple_url(), "--upstream-retries", "0", "--download-lease", "3s"];
    let mut cluster = Cluster::start("nodes_kill", 2, &args);
    let (b, a) = (cluster.nodes.pop().unwrap(), cluster.nodes.pop().unwrap());
    let page = "/simple/fixture-kill/";
    let (on_a, on_b) = (file_url(&a, page, &wheel.filename), file_url(&b, page, &wheel.filename));

    // A client of A starts the download (held upstream halfway), and A
    // holds the lease; a client of B waits for it.
    let path = FixtureUpstream::file_path(&wheel);
    let mut a_client = std::net::TcpStream::connect(a.addr()).unwrap();
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", on_a.path(), on_a.authority());
    std::io::Write::write_all(&mut a_client, request.as_bytes()).unwrap();
    assert!(larder_testkit::proxy::eventually(Duration::from_secs(10), || upstream.count(&path) == 1));
    let waiting = std::thread::scope(|scope| {
        let b_client = scope.spawn(|| b.get_url(&on_b).send());
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(upstream.count(&path), 1, "B waits for A's download: {}", upstream.describe_seen());

        // A dies holding the lease; B takes the download over once it expires.
        run_ok(Command::new("kill").args(["-9", &a.pid().to_string()]));
        upstream.hold_file(&wheel.filename, Duration::ZERO);
        let started = Instant::now();
        let response = b_client.join().unwrap();
        (response, started.elapsed())
    });
    let (response, took) = waiting;
    assert_eq!(sha256_hex(&response.assert_status(200).body), wheel.sha256);
    assert_eq!(upstream.count(&path), 2, "A's download and B's: {}", upstream.describe_seen());
    assert!(b.stderr_text().contains("took over work another node held"), "{}", b.stderr_text());
    eprintln!("B served the file {took:?} after A was killed");
    drop(a_client);
}

#[test]
fn two_nodes_mirroring_at_once_fetch_each_file_once() {
    use larder_testkit::mirror::{ChildGuard, SerialUpstream};
    let fixtures = temp_dir("mirror-twice-fx");
    let files: Vec<Built> =
        (0..6).map(|i| Wheel::new(&format!("fixture-twice-{i}"), "1.0").build(fixtures.path())).collect();
    let upstream = SerialUpstream::start();
    upstream.add_all(&files);
    // Slow files, so that both runs are downloading at the same time.
    upstream.set_file_delay(Duration::from_millis(300));
    let cluster = Cluster::start("mirror-twice", 0, &[]);
    let dirs = [temp_dir("mirror-twice-a"), temp_dir("mirror-twice-b")];
    let args = ["mirror", "--upstream", &upstream.simple_url(), "--all", "--jobs", "4", "--quiet"];
    let mut runs: Vec<ChildGuard> =
        dirs.iter().map(|dir| ChildGuard::spawn(cluster.larder_in(dir.path(), &args))).collect();
    for run in &mut runs {
        run.wait().assert_success();
    }

    let counts = upstream.counts();
    for file in &files {
        let path = SerialUpstream::file_path(file);
        assert_eq!(counts.get(&path), Some(&1), "{path} fetched other than once: {}", upstream.describe());
    }
    let blobs: Url = cluster.env.iter().find(|(key, _)| *key == "LARDER_BLOBS").unwrap().1.parse().unwrap();
    let keys = TestS3::from_env().keys(&blobs);
    for file in &files {
        assert!(keys.iter().any(|key| key.ends_with(&file.sha256)), "{} not stored: {keys:?}", file.filename);
    }
}
