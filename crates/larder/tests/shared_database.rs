//! The metadata in PostgreSQL (issue 16): the proxy, uploads and the
//! mirror end to end with `--database postgres://...` (or `LARDER_DATABASE`,
//! or `database = "..."` in the config file) against the test server of
//! `scripts/test`, each test in a database of its own; the database
//! unreachable at start-up (a clear error, never the password) and gone
//! mid-request (a 5xx with the reason, and serving again once it is back).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use larder_testkit::servers::TestDatabase;

/// The filenames the database lists in `index`.
fn listed(db: &TestDatabase, index: &str) -> Vec<String> {
    let rows = db.query(&format!("SELECT filename FROM files WHERE index_name = '{index}' ORDER BY filename"));
    rows.lines().map(str::to_owned).collect()
}

/// The metadata went to PostgreSQL, not to a file of the data directory.
#[track_caller]
fn assert_no_sqlite_file(data_dir: &Path) {
    assert!(!data_dir.join("larder.db").exists(), "an SQLite database was made in {}", data_dir.display());
}

#[test]
fn pip_installs_through_the_proxy_with_the_metadata_in_postgres() {
    let db = TestDatabase::create("e2e_proxy");
    let fixtures = temp_dir("pg-proxy-fx");
    let files = [
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib").build(fixtures.path()),
        Wheel::new("fixture-lib", "1.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let data = temp_dir("pg-proxy-data");
    let url = upstream.simple_url();
    let database = db.url().to_string();
    let serve_args = ["--database", database.as_str(), "--min-free-space", "0"];
    let server = larder().serve_with(data.path(), &[&["--upstream", url.as_str()][..], &serve_args].concat());
    let clients = Clients::new();
    let install = |server: &Server, venv: &str| {
        let target = clients.target_venv(venv);
        let index = server.url("/simple/").to_string();
        run_ok(clients.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-app"]));
    };
    install(&server, "cold");
    assert_eq!(listed(&db, "upstream"), [files[0].filename.clone(), files[1].filename.clone()]);
    assert_eq!(db.query("SELECT count(*) FROM files WHERE fetched").trim(), "2", "both wheels recorded as stored");
    assert_no_sqlite_file(data.path());

    // A new process on the same store, the upstream gone: everything it
    // serves comes from the blobs and the PostgreSQL metadata.
    drop(server);
    drop(upstream);
    let server = larder().serve_with(data.path(), &[&["--offline"][..], &serve_args].concat());
    install(&server, "warm");
    assert_no_sqlite_file(data.path());
}

#[test]
fn twine_uploads_to_a_hosted_index_with_the_metadata_in_postgres() {
    let db = TestDatabase::create("e2e_upload");
    let data = temp_dir("pg-upload-data");
    let fixtures = temp_dir("pg-upload-fx");
    // The index and the token through LARDER_DATABASE, the server through
    // the flag.
    let larder_ok = |args: &[&str]| {
        let out = run_ok(
            larder().command().args(args).arg("--data-dir").arg(data.path()).env("LARDER_DATABASE", db.url().as_str()),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    larder_ok(&["index", "create", "team"]);
    let token = larder_ok(&["token", "create", "--index", "team", "--scope", "upload"]).trim().to_owned();
    let database = db.url().to_string();
    let server = larder().serve_with(data.path(), &["--database", database.as_str(), "--min-free-space", "0"]);
    let wheel = Wheel::new("fixture-corp", "1.0").build(fixtures.path());
    let clients = Clients::new();
    let out = run(clients
        .twine()
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url"])
        .arg(server.url("/team/").as_str())
        .arg(&wheel.path)
        .env("TWINE_USERNAME", "__token__")
        .env("TWINE_PASSWORD", &token));
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(listed(&db, "team"), std::slice::from_ref(&wheel.filename));
    assert_eq!(db.query("SELECT index_name FROM tokens").trim(), "team");
    let page: Value = server.get("/team/simple/fixture-corp/").header("Accept", JSON).send().assert_status(200).json();
    assert_eq!(page["files"][0]["filename"], wheel.filename.as_str());
    let target = clients.target_venv("installed");
    let index = server.url("/team/simple/").to_string();
    run_ok(clients.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-corp"]));
    assert_no_sqlite_file(data.path());
}

#[test]
fn mirror_fills_postgres_named_in_the_config_file_and_serve_serves_it_offline() {
    let db = TestDatabase::create("e2e_mirror");
    let fixtures = temp_dir("pg-mirror-fx");
    let files = [
        Wheel::new("fixture-lib", "1.0").build(fixtures.path()),
        Wheel::new("fixture-lib", "2.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let data = temp_dir("pg-mirror-data");
    let config = data.path().join("larder.toml");
    std::fs::write(&config, format!("database = \"{}\"\n", db.url())).unwrap();
    let url = upstream.simple_url();
    run_ok(
        larder()
            .command()
            .args(["mirror", "--upstream", &url, "--project", "fixture-lib", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data.path()),
    );
    assert_eq!(listed(&db, "upstream"), [files[0].filename.clone(), files[1].filename.clone()]);
    assert_no_sqlite_file(data.path());
    drop(upstream);

    let server = larder().serve_with(data.path(), &["--offline", "--config", config.to_str().unwrap()]);
    let page: Value = server.get("/simple/fixture-lib/").header("Accept", JSON).send().assert_status(200).json();
    assert_eq!(page["files"].as_array().unwrap().len(), 2, "{page}");
    server.get("/simple/fixture-lib/").send().assert_status(200);
    run_ok(larder().command().args(["verify", "--config"]).arg(&config).arg("--data-dir").arg(data.path()));
}

#[test]
fn an_unreachable_database_at_start_up_is_a_clear_error_that_never_shows_the_password() {
    let data = temp_dir("pg-unreachable");
    // Nothing listens on port 1.
    let out = run(larder()
        .command()
        .args(["serve", "--database", "postgres://larder:hunter2-secret@127.0.0.1:1/larder", "--data-dir"])
        .arg(data.path()));
    assert!(!out.status.success(), "{}", describe_output(&out));
    let shown = describe_output(&out);
    assert!(
        shown.contains("cannot connect to the metadata database postgres://larder:***@127.0.0.1:1/larder"),
        "{shown}"
    );
    assert!(shown.contains("check that the server is running"), "{shown}");
    assert!(!shown.contains("hunter2-secret"), "the password was printed: {shown}");
}

#[test]
fn a_database_outage_mid_request_is_a_5xx_with_the_reason_and_serving_recovers() {
    let db = TestDatabase::create("e2e_outage");
    // The server through a relay that the test cuts.
    let server_addr = format!("{}:{}", db.url().host_str().unwrap(), db.url().port().unwrap_or(5432));
    let relay = TcpRelay::start(server_addr.parse().expect("the test server's address is an IP and a port"));
    let mut through = db.url().clone();
    through.set_port(Some(relay.addr().port())).unwrap();
    let fixtures = temp_dir("pg-outage-fx");
    let files = [
        Wheel::new("fixture-one", "1.0").build(fixtures.path()),
        Wheel::new("fixture-two", "1.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let data = temp_dir("pg-outage-data");
    let url = upstream.simple_url();
    let server = larder()
        .serve_with(data.path(), &["--upstream", &url, "--database", through.as_str(), "--min-free-space", "0"]);
    server.get("/simple/fixture-one/").header("Accept", JSON).send().assert_status(200);

    relay.switch_off();
    let during = server.get("/simple/fixture-two/").header("Accept", JSON).send();
    assert_eq!(during.status, 503, "{}", during.describe());
    assert!(during.text().contains("metadata database is unavailable"), "no reason given: {}", during.describe());
    let health = server.get("/health").send();
    health.assert_status(503);
    assert!(health.text().starts_with("metadata database unavailable: "), "{}", health.describe());
    assert!(!health.text().contains("blob store"), "{}", health.describe());

    relay.switch_on();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = server.get("/simple/fixture-two/").header("Accept", JSON).send();
        if after.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not serving again once the database is back: {}", after.describe());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(server.get("/health").send().assert_status(200).text(), "ok\n");
    assert_no_sqlite_file(data.path());
}
