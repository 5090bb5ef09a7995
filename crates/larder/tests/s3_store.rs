//! larder with its blobs in a real S3-compatible bucket (the Garage server
//! that `scripts/test` starts on 127.0.0.1), each test under a bucket
//! prefix of its own: `serve --blobs s3://...` as a caching proxy (real
//! pip, cold then warm with the upstream gone), twine uploads to a hosted
//! index, `verify`, `gc`, `export` and `import`, the bucket going away
//! at start-up and in the middle of a run (with and without the disk
//! cache), and `migrate-store` of a filled single-machine store into the
//! bucket and back.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use larder_testkit::servers::TestDatabase;

/// A fresh prefix of the test bucket and the environment pointing larder
/// at the server.
struct Bucket {
    s3: TestS3,
    url: Url,
    env: Vec<(&'static str, String)>,
}

impl Bucket {
    fn new(label: &str) -> Bucket {
        let s3 = TestS3::from_env();
        let url = s3.fresh_prefix(label);
        let env = s3.aws_env();
        Bucket { s3, url, env }
    }

    /// `--blobs s3://BUCKET/PREFIX`.
    fn blobs_args(&self) -> [&str; 2] {
        ["--blobs", self.url.as_str()]
    }

    /// Blob keys in the bucket (`blobs/sha256/aa/bb/<hex>`).
    fn blob_keys(&self) -> Vec<String> {
        self.s3.keys(&self.url)
    }

    fn holds(&self, sha256: &str) -> bool {
        self.blob_keys().iter().any(|key| key.ends_with(sha256))
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// `larder ARGS --data-dir DIR --blobs URL` with the AWS variables.
    fn larder(&self, data_dir: &Path, args: &[&str]) -> Command {
        let mut cmd = larder().command();
        cmd.args(args).arg("--data-dir").arg(data_dir).args(self.blobs_args()).envs(self.env());
        cmd
    }

    fn serve(&self, data_dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--min-free-space", "0"];
        args.extend_from_slice(&self.blobs_args());
        args.extend_from_slice(extra);
        larder().serve_with_env(data_dir, &args, &self.env())
    }
}

/// No blob file in the data directory: they are all in the bucket.
#[track_caller]
fn assert_no_local_blobs(data_dir: &Path) {
    let local = larder_testkit::proxy::blob_paths(data_dir);
    assert!(local.is_empty(), "blobs on local disk: {local:?}");
}

/// The URL of `filename` on a JSON project page.
fn file_url(server: &Server, page: &str, filename: &str) -> Url {
    let page = server.get(page).header("Accept", JSON).send().assert_status(200).json();
    let file = page["files"].as_array().unwrap().iter().find(|f| f["filename"] == filename);
    let href = file.unwrap_or_else(|| panic!("{filename} not on {page}"))["url"].as_str().unwrap().to_owned();
    resolve(server.base_url(), &href)
}

fn wheels(dir: &Path) -> Vec<Built> {
    vec![
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib>=1.0").build(dir),
        Wheel::new("fixture-lib", "1.0").module_source(&"# padding\n".repeat(20_000)).build(dir),
    ]
}

fn upstream_with(files: &[Built]) -> FixtureUpstream {
    let upstream = FixtureUpstream::start(UpstreamFormat::Json);
    for file in files {
        upstream.add_file(UpstreamFile::new(file));
    }
    upstream
}

#[test]
fn pip_installs_through_a_proxy_whose_blobs_are_in_the_bucket_cold_then_warm() {
    let bucket = Bucket::new("s3-proxy");
    let fixtures = temp_dir("s3-proxy-fx");
    let files = wheels(fixtures.path());
    let upstream = upstream_with(&files);
    let data = temp_dir("s3-proxy-data");
    let server = bucket.serve(data.path(), &["--upstream", &upstream.simple_url(), "--upstream-retries", "0"]);
    let index = server.url("/simple/").to_string();

    let cold = Clients::new();
    let target = cold.target_venv("cold");
    run_ok(cold.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-app"]));
    for file in &files {
        assert!(bucket.holds(&file.sha256), "{} not in the bucket: {:?}", file.filename, bucket.blob_keys());
    }
    assert_no_local_blobs(data.path());

    // Warm, with the upstream gone: every file from the bucket.
    drop(upstream);
    let from = larder_testkit::settled_cache_log(&server).len();
    let warm = Clients::new();
    let target = warm.target_venv("warm");
    run_ok(warm.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-app"]));
    let log = larder_testkit::settled_cache_log(&server);
    let lib = &files[1];
    assert!(
        log[from..].iter().any(|l| l.path.ends_with(&lib.filename) && l.status == 200 && l.cache == "hit"),
        "{:#?}",
        &log[from..]
    );

    // A range is a ranged read of the object.
    let url = file_url(&server, "/simple/fixture-lib/", &lib.filename);
    let r = server.get_url(&url).header("Range", "bytes=100-199").send();
    r.assert_status(206);
    assert_eq!(r.body, std::fs::read(&lib.path).unwrap()[100..200]);
    let whole = server.get_url(&url).send();
    assert_eq!(sha256_hex(&whole.assert_status(200).body), lib.sha256);
}

#[test]
fn mirror_fills_the_bucket_and_an_offline_server_serves_it() {
    let bucket = Bucket::new("s3-mirror");
    let fixtures = temp_dir("s3-mirror-fx");
    let files = wheels(fixtures.path());
    let upstream = upstream_with(&files);
    let data = temp_dir("s3-mirror-data");
    let args = [
        "mirror",
        "--quiet",
        "--upstream",
        &upstream.simple_url(),
        "--project",
        "fixture-app",
        "--project",
        "fixture-lib",
    ];
    run_ok(&mut bucket.larder(data.path(), &args));
    for file in &files {
        assert!(bucket.holds(&file.sha256), "{} not mirrored into the bucket: {:?}", file.filename, bucket.blob_keys());
    }
    assert_no_local_blobs(data.path());
    drop(upstream);
    let server = bucket.serve(data.path(), &["--offline"]);
    let url = file_url(&server, "/simple/fixture-app/", &files[0].filename);
    assert_eq!(sha256_hex(&server.get_url(&url).send().assert_status(200).body), files[0].sha256);
}

#[test]
fn twine_uploads_verify_gc_export_and_import_work_with_blobs_in_the_bucket() {
    let bucket = Bucket::new("s3-hosted");
    let data = temp_dir("s3-hosted-data");
    let fixtures = temp_dir("s3-hosted-fx");
    let wheel = Wheel::new("fixture-corp", "1.0").summary("ours").build(fixtures.path());
    run_ok(&mut bucket.larder(data.path(), &["index", "create", "team"]));
    let token = run_ok(&mut bucket.larder(data.path(), &["token", "create", "--index", "team", "--scope", "upload"]));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let server = bucket.serve(data.path(), &["--offline"]);
    let clients = Clients::new();
    run_ok(
        clients
            .twine()
            .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url"])
            .arg(server.url("/team/").as_str())
            .arg(&wheel.path)
            .env("TWINE_USERNAME", "__token__")
            .env("TWINE_PASSWORD", &token),
    );
    assert!(bucket.holds(&wheel.sha256), "{:?}", bucket.blob_keys());
    assert_no_local_blobs(data.path());
    let url = file_url(&server, "/team/simple/fixture-corp/", &wheel.filename);
    assert_eq!(sha256_hex(&server.get_url(&url).send().assert_status(200).body), wheel.sha256);
    drop(server);

    // verify reads every blob back from the bucket.
    let out = run_ok(&mut bucket.larder(data.path(), &["verify"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("checked 2 blobs") && text.contains("the store is sound"), "{text}");

    // ... and finds an object changed in the bucket behind larder's back
    // (same size, other bytes), then the original put back.
    let key = bucket.blob_keys().into_iter().find(|key| key.ends_with(&wheel.sha256)).unwrap();
    let mut damaged = wheel.bytes();
    damaged[100] ^= 0xff;
    bucket.s3.put(&bucket.url, &key, &damaged);
    let out = run(&mut bucket.larder(data.path(), &["verify"]));
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(describe_output(&out).contains(&wheel.filename), "{}", describe_output(&out));
    bucket.s3.put(&bucket.url, &key, &wheel.bytes());

    // gc removes an object nothing refers to, and keeps the wheel.
    let orphan_dir = temp_dir("s3-hosted-orphan");
    let orphan = Wheel::new("fixture-orphan", "1.0").build(orphan_dir.path());
    let other = temp_dir("s3-hosted-other");
    // Published into the same bucket prefix by a store that then forgets it.
    run_ok(bucket.larder(other.path(), &["add"]).arg(&orphan.path));
    assert!(bucket.holds(&orphan.sha256));
    let out = run_ok(&mut bucket.larder(data.path(), &["gc", "--grace", "0s"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 2 unreferenced blobs"), "{}", describe_output(&out));
    assert!(!bucket.holds(&orphan.sha256), "{:?}", bucket.blob_keys());
    assert!(bucket.holds(&wheel.sha256));

    // export (of the default index: a file added there): a static tree
    // and a bundle; the bundle imported into a store with its blobs under
    // another prefix.
    let local = Wheel::new("fixture-local", "1.0").build(fixtures.path());
    run_ok(bucket.larder(data.path(), &["add"]).arg(&local.path));
    let tree = temp_dir("s3-hosted-tree");
    let bundle = tree.path().join("bundle.tar");
    run_ok(bucket.larder(data.path(), &["export"]).arg("--to").arg(tree.path().join("site")));
    let exported = files_named(&tree.path().join("site"), &local.filename);
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(sha256_hex(&std::fs::read(&exported[0]).unwrap()), local.sha256);
    run_ok(bucket.larder(data.path(), &["export"]).arg("--bundle").arg(&bundle));
    let target = Bucket::new("s3-hosted-import");
    let imported = temp_dir("s3-hosted-imported");
    run_ok(target.larder(imported.path(), &["import"]).arg(&bundle));
    assert!(target.holds(&local.sha256), "{:?}", target.blob_keys());
    assert_no_local_blobs(imported.path());
    let out = run_ok(&mut target.larder(imported.path(), &["verify"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the store is sound"), "{}", describe_output(&out));
}

#[test]
fn a_bucket_unreachable_at_start_up_is_a_clear_error_naming_it() {
    let bucket = Bucket::new("s3-unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let data = temp_dir("s3-unreachable-data");
    let started = std::time::Instant::now();
    let out = run_fails(
        bucket
            .larder(data.path(), &["serve", "--listen", "127.0.0.1:0"])
            .env("AWS_ENDPOINT_URL", format!("http://{closed}")),
    );
    assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [bucket.url.as_str(), &closed.to_string(), "check the endpoint", "credentials"] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    assert!(!stderr.contains(&bucket.s3.secret_access_key), "the secret is shown: {stderr}");
}

#[test]
fn a_bucket_gone_mid_run_gets_503_for_files_while_pages_are_served_and_recovers() {
    let outage = Outage::start("s3-outage", &[]);
    let url = outage.file_url();
    assert_eq!(sha256_hex(&outage.server.get_url(&url).send().assert_status(200).body), outage.lib().sha256);
    assert!(larder_testkit::proxy::eventually(Duration::from_secs(10), || outage.bucket.holds(&outage.lib().sha256)));
    assert!(!outage.data.path().join("blob-cache").exists(), "no cache without --blob-cache-size");

    outage.relay.switch_off();
    let r = outage.server.get("/simple/fixture-lib/").header("Accept", JSON).send();
    r.assert_status(200);
    let r = outage.server.get_url(&url).send();
    r.assert_status(503);
    assert!(r.text().contains("blob store") && r.text().contains(outage.bucket.url.as_str()), "{}", r.describe());
    assert!(r.header("retry-after").is_some(), "{}", r.describe());
    assert!(!outage.server.stderr_text().contains(&outage.bucket.s3.secret_access_key), "the secret is logged");
    // /health says which half of the store is away.
    let health = outage.server.get("/health").send();
    health.assert_status(503);
    assert!(health.text().starts_with("blob store unavailable: "), "{}", health.describe());
    assert!(health.text().contains(outage.bucket.url.as_str()) && !health.text().contains("database"));

    outage.relay.switch_on();
    assert_eq!(sha256_hex(&outage.server.get_url(&url).send().assert_status(200).body), outage.lib().sha256);
    assert_eq!(outage.server.get("/health").send().assert_status(200).text(), "ok\n");
}

#[test]
fn with_the_disk_cache_warm_files_are_local_and_served_through_an_outage() {
    let outage = Outage::start("s3-cached", &["--blob-cache-size", "10M"]);
    let url = outage.file_url();
    let lib = outage.lib();
    assert_eq!(sha256_hex(&outage.server.get_url(&url).send().assert_status(200).body), lib.sha256);
    let cache = outage.data.path().join("blob-cache");
    assert!(
        larder_testkit::proxy::eventually(Duration::from_secs(10), || files_named(&cache, &lib.sha256).len() == 1),
        "not in the cache: {:?}",
        files_named(&cache, "")
    );

    outage.relay.switch_off();
    let r = outage.server.get_url(&url).send();
    assert_eq!(sha256_hex(&r.assert_status(200).body), lib.sha256);
    let r = outage.server.get_url(&url).header("Range", "bytes=0-9").send();
    assert_eq!(r.assert_status(206).body, std::fs::read(&lib.path).unwrap()[..10]);
    // Not cached and the bucket away: a clear 503, not a wrong answer.
    let app = outage.files[0].clone();
    let app_url = file_url(&outage.server, "/simple/fixture-app/", &app.filename);
    outage.server.get_url(&app_url).send().assert_status(503);
}

/// `larder migrate-store --quiet --data-dir DIR ARGS` with the AWS
/// variables.
fn migrate(bucket: &Bucket, data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = larder().command();
    cmd.args(["migrate-store", "--quiet", "--data-dir"]).arg(data_dir).args(args).envs(bucket.env());
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn migrate_store_moves_a_filled_store_into_the_bucket_resumes_and_moves_it_back() {
    let bucket = Bucket::new("s3-migrate");
    let data = temp_dir("s3-migrate-data");
    let fixtures = temp_dir("s3-migrate-fx");
    let files = wheels(fixtures.path());
    larder().add(data.path(), &[fixtures.path()]).assert_success();
    let local = larder_testkit::proxy::blob_paths(data.path());
    let n = local.len();
    assert!(n >= 4, "wheels and their metadata: {local:?}");

    let to = ["--to-blobs", bucket.url.as_str()];
    let out = run_ok(&mut migrate(&bucket, data.path(), &to));
    assert!(stdout(&out).contains(&format!("copied {n} blobs")), "{}", describe_output(&out));
    assert_eq!(bucket.blob_keys().len(), n);

    // As if interrupted before two of them: only those are copied again.
    for key in &bucket.blob_keys()[..2] {
        bucket.s3.delete(&bucket.url, key);
    }
    let out = run_ok(&mut migrate(&bucket, data.path(), &to));
    let text = stdout(&out);
    assert!(text.contains("copied 2 blobs") && text.contains(&format!("{} already there", n - 2)), "{text}");

    // Served from the bucket, the local blobs gone.
    std::fs::remove_dir_all(data.path().join("blobs")).unwrap();
    let server = bucket.serve(data.path(), &["--offline"]);
    let clients = Clients::new();
    let target = clients.target_venv("migrated");
    let index = server.url("/simple/").to_string();
    run_ok(clients.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-app"]));
    drop(server);

    // And back into the data directory: served without the bucket.
    let data_dir = data.path().to_str().unwrap();
    let out = run_ok(&mut migrate(&bucket, data.path(), &["--blobs", bucket.url.as_str(), "--to-blobs", data_dir]));
    assert!(stdout(&out).contains(&format!("copied {n} blobs")), "{}", describe_output(&out));
    let server = larder().serve_with(data.path(), &["--offline", "--min-free-space", "0"]);
    let url = file_url(&server, "/simple/fixture-lib/", &files[1].filename);
    assert_eq!(sha256_hex(&server.get_url(&url).send().assert_status(200).body), files[1].sha256);

    // Onto itself: refused, clearly.
    let out = run_fails(&mut migrate(&bucket, data.path(), &["--to-blobs", data_dir]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"), "{}", describe_output(&out));
    drop(server);

    // Blobs and metadata into the shared backends at once: a node on the
    // bucket and PostgreSQL alone serves the store.
    let db = TestDatabase::create("s3_migrate");
    let to = ["--to-blobs", bucket.url.as_str(), "--to-database", db.url().as_str()];
    let out = run_ok(&mut migrate(&bucket, data.path(), &to));
    let text = stdout(&out);
    assert!(text.contains(&format!("{n} already there")) && text.contains("copied the metadata ("), "{text}");
    let node = temp_dir("s3-migrate-node");
    let server = bucket.serve(node.path(), &["--offline", "--database", db.url().as_str()]);
    let url = file_url(&server, "/simple/fixture-lib/", &files[1].filename);
    assert_eq!(sha256_hex(&server.get_url(&url).send().assert_status(200).body), files[1].sha256);
    let out = run_fails(&mut migrate(&bucket, data.path(), &to));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds metadata"), "{}", describe_output(&out));
}

#[test]
fn a_killed_migration_resumes_where_it_stopped() {
    let bucket = Bucket::new("s3-migrate-kill");
    let data = temp_dir("s3-migrate-kill-data");
    let fixtures = temp_dir("s3-migrate-kill-fx");
    for i in 0..40 {
        Wheel::new(&format!("fixture-n{i}"), "1.0").build(fixtures.path());
    }
    larder().add(data.path(), &[fixtures.path()]).assert_success();
    let n = larder_testkit::proxy::blob_paths(data.path()).len();
    let to = ["--to-blobs", bucket.url.as_str(), "--jobs", "1"];
    let mut child = migrate(&bucket, data.path(), &to).stdout(std::process::Stdio::null()).spawn().unwrap();
    larder_testkit::proxy::eventually(Duration::from_secs(30), || bucket.blob_keys().len() >= 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = bucket.blob_keys().len();
    assert!(before >= 3, "{before} blobs copied before the kill");

    let out = run_ok(&mut migrate(&bucket, data.path(), &to));
    let text = stdout(&out);
    assert!(text.contains(&format!("copied {} blobs", n - before)), "{before} of {n} before: {text}");
    assert!(text.contains(&format!("{before} already there")), "{text}");
    assert_eq!(bucket.blob_keys().len(), n);
}

/// `serve --blobs s3://...` reaching the bucket through a relay that the
/// test switches off, over an upstream with [`wheels`].
struct Outage {
    server: Server,
    relay: TcpRelay,
    bucket: Bucket,
    files: Vec<Built>,
    data: TempDir,
    _upstream: FixtureUpstream,
    _fixtures: TempDir,
}

impl Outage {
    fn start(label: &str, extra: &[&str]) -> Outage {
        let bucket = Bucket::new(label);
        let garage = bucket.s3.endpoint.socket_addrs(|| None).unwrap()[0];
        let relay = TcpRelay::start(garage);
        let fixtures = temp_dir(&format!("{label}-fx"));
        let files = wheels(fixtures.path());
        let upstream = upstream_with(&files);
        let data = temp_dir(&format!("{label}-data"));
        let endpoint = relay.http_url();
        let mut env = bucket.env();
        env.retain(|(key, _)| *key != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL", &endpoint));
        let upstream_url = upstream.simple_url();
        let mut args = vec!["--min-free-space", "0", "--upstream", upstream_url.as_str()];
        args.extend_from_slice(&bucket.blobs_args());
        args.extend_from_slice(extra);
        let server = larder().serve_with_env(data.path(), &args, &env);
        Outage { server, relay, bucket, files, data, _upstream: upstream, _fixtures: fixtures }
    }

    fn lib(&self) -> &Built {
        &self.files[1]
    }

    fn file_url(&self) -> Url {
        file_url(&self.server, "/simple/fixture-lib/", &self.lib().filename)
    }
}

/// Every file under `dir` named `name` (every file: `""`).
fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if name.is_empty() || path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}
