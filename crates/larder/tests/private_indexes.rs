//! Private indexes end to end: real twine and real `uv publish` (the pinned
//! versions in `.venv-test`) upload to a running `larder serve`, real pip
//! and uv install from the index, a layered index serves the private
//! package over an upstream fixture project of the same name, the
//! release-age policy hides a fixture file uploaded "yesterday", and every
//! kind of bad upload and bad token gets a clear 4xx while nothing already
//! published changes.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use larder_testkit::client::installed_version;
use larder_testkit::http::send_raw;

/// The public lookalike the private `fixture-corp` must hide.
const PUBLIC_CORP: &str = "fixture_corp-9.0-py3-none-any.whl";

/// `larder <args> --data-dir <dir>`, which must succeed; its stdout.
fn larder_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = run_ok(larder().command().args(args).arg("--data-dir").arg(data_dir));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Creates a token and returns its secret.
fn token(data_dir: &Path, index: &str, scope: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "create", "--index", index, "--scope", scope];
    args.extend_from_slice(extra);
    let secret = larder_ok(data_dir, &args).trim().to_owned();
    assert!(secret.starts_with("larder_"), "{secret}");
    secret
}

/// An upstream fixture, a data dir with the index `team` (layered over the
/// upstream) and the server.
struct Setup {
    server: Server,
    _upstream: FixtureUpstream,
    upstream_url: String,
    data_dir: TempDir,
    fixtures: TempDir,
}

impl Setup {
    fn new(label: &str, index_args: &[&str], serve_args: &[&str], upstream_files: &[UpstreamFile]) -> Setup {
        let data_dir = temp_dir(&format!("{label}-data"));
        let fixtures = temp_dir(&format!("{label}-fixtures"));
        let upstream = FixtureUpstream::start(UpstreamFormat::Json);
        for file in upstream_files {
            upstream.add_file(file.clone());
        }
        let mut args = vec!["index", "create", "team"];
        args.extend_from_slice(index_args);
        larder_ok(data_dir.path(), &args);
        let url = upstream.simple_url();
        // The machine running the tests may be short of disk: these tests are
        // not about the free-space reserve.
        let mut serve = vec!["--upstream", url.as_str(), "--min-free-space", "0"];
        serve.extend_from_slice(serve_args);
        let server = larder().serve_with(data_dir.path(), &serve);
        Setup { server, _upstream: upstream, upstream_url: url.clone(), data_dir, fixtures }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path).to_string()
    }

    fn page(&self, path: &str) -> Value {
        self.server.get(path).header("Accept", JSON).send().assert_status(200).json()
    }

    fn filenames(&self, path: &str) -> Vec<String> {
        let page = self.page(path);
        page["files"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap().to_owned()).collect()
    }
}

/// `POST /api/team/fixture-corp/<action>` with a JSON body.
fn admin_api(addr: std::net::SocketAddr, action: &str, token: &str, body: &str) -> Response {
    let request = format!(
        "POST /api/team/fixture-corp/{action} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        basic_auth(token),
        body.len()
    );
    send_raw(addr, request.as_bytes())
}

fn upstream_file(dir: &Path, wheel: Wheel) -> UpstreamFile {
    UpstreamFile::new(&wheel.build(dir))
}

fn twine_upload(clients: &Clients, url: &str, token: &str, file: &Path) -> Output {
    run(clients
        .twine()
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url", url])
        .arg(file)
        .env("TWINE_USERNAME", "__token__")
        .env("TWINE_PASSWORD", token)
        .env("COLUMNS", "500"))
}

fn uv_publish(clients: &Clients, url: &str, check_url: &str, token: &str, file: &Path) -> Output {
    run(clients
        .uv()
        .args(["publish", "--publish-url", url, "--check-url", check_url, "--trusted-publishing", "never"])
        .arg(file)
        .env("UV_PUBLISH_TOKEN", token))
}

#[test]
fn twine_and_uv_publish_then_pip_and_uv_install_the_private_package_over_the_public_one() {
    let clients = Clients::new();
    let upstream_dir = temp_dir("publish-upstream");
    let upstream_files = [
        upstream_file(upstream_dir.path(), Wheel::new("fixture-corp", "9.0").module_source("PUBLIC = True\n")),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-dep", "1.0")),
    ];
    let setup = Setup::new("publish", &["--bases", "upstream"], &[], &upstream_files);
    let data = setup.data_dir.path();
    let upload = token(data, "team", "upload", &["--description", "ci"]);
    let dir = setup.fixtures.path();
    let wheel = Wheel::new("fixture-corp", "1.0").requires_dist("fixture-dep").summary("ours").build(dir);
    let sdist = Sdist::new("fixture-corp", "1.0").requires_dist("fixture-dep").build(dir);

    // twine: the wheel; again (a no-op, so re-runs pass), this time with
    // the .pypirc that `larder client-config` writes for the index.
    let team_upload = setup.url("/team/");
    let out = twine_upload(&clients, &team_upload, &upload, &wheel.path);
    assert!(out.status.success(), "{}", describe_output(&out));
    let config =
        run_ok(larder().command().args(["client-config", "--format", "pypirc", "--url", &setup.url("/team/simple/")]));
    let pypirc = clients.work_dir().join("team.pypirc");
    std::fs::write(&pypirc, &config.stdout).unwrap();
    let out = run(clients
        .twine()
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository", "larder", "--config-file"])
        .arg(&pypirc)
        .arg(&wheel.path)
        .env("TWINE_PASSWORD", &upload));
    assert!(out.status.success(), "{}", describe_output(&out));
    // uv publish: the sdist, checking the index before and after; twice.
    let team_simple = setup.url("/team/simple/");
    for _ in 0..2 {
        let out = uv_publish(&clients, &team_upload, &team_simple, &upload, &sdist.path);
        assert!(out.status.success(), "{}", describe_output(&out));
    }

    // The layered index shows the private files only; the upstream-only
    // index still shows the public project.
    let mut files = setup.filenames("/team/simple/fixture-corp/");
    files.sort();
    assert_eq!(files, [wheel.filename.clone(), sdist.filename.clone()]);
    assert_eq!(setup.filenames("/upstream/simple/fixture-corp/"), [PUBLIC_CORP]);
    let page = setup.page("/team/simple/fixture-corp/");
    let listed = page["files"].as_array().unwrap().iter().find(|f| f["filename"] == wheel.filename.as_str()).unwrap();
    assert_eq!(listed["hashes"]["sha256"], wheel.sha256.as_str());
    assert!(listed["upload-time"].as_str().unwrap().ends_with('Z'), "{listed}");
    assert_eq!(listed["size"], wheel.size);

    // pip and uv install the private 1.0 (not the public 9.0) and its
    // dependency from the upstream, through the one index URL.
    let pip_target = clients.target_venv("pip-target");
    run_ok(clients.pip().arg("--python").arg(&pip_target).args([
        "install",
        "--index-url",
        &team_simple,
        "fixture-corp",
    ]));
    assert_eq!(installed_version(&clients, &pip_target, "fixture-corp").as_deref(), Some("1.0"));
    assert_eq!(installed_version(&clients, &pip_target, "fixture-dep").as_deref(), Some("1.0"));
    let uv_target = clients.target_venv("uv-target");
    run_ok(clients.uv().args(["pip", "install", "--python"]).arg(&uv_target).args([
        "--index-url",
        &team_simple,
        "fixture-corp",
    ]));
    assert_eq!(installed_version(&clients, &uv_target, "fixture-corp").as_deref(), Some("1.0"));
    assert_eq!(installed_version(&clients, &uv_target, "fixture-dep").as_deref(), Some("1.0"));

    // The JSON API: releases, digests recomputed at upload, info from METADATA.
    let json = setup.server.get("/team/pypi/fixture-corp/json").send().assert_status(200).json();
    assert_eq!(json["info"]["version"], "1.0");
    assert_eq!(json["info"]["summary"], "ours");
    assert_eq!(json["info"]["requires_dist"], serde_json::json!(["fixture-dep"]));
    let urls = json["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2);
    let listed_wheel = urls.iter().find(|u| u["filename"] == wheel.filename.as_str()).unwrap();
    assert_eq!(listed_wheel["digests"]["sha256"], wheel.sha256.as_str());
    assert_eq!(listed_wheel["digests"]["md5"].as_str().unwrap().len(), 32);
    assert_eq!(listed_wheel["packagetype"], "bdist_wheel");
    let release = setup.server.get("/team/pypi/fixture-corp/1.0/json").send().assert_status(200).json();
    assert!(release.get("releases").is_none());
    setup.server.get("/team/pypi/fixture-corp/2.0/json").send().assert_status(404);
    let public = setup.server.get("/upstream/pypi/fixture-corp/json").send().assert_status(200).json();
    assert_eq!(public["info"]["version"], "9.0");

    // The built-in hosted index `local` takes uploads too, and the default
    // /simple/ shows them exactly as it shows `larder add`ed files.
    let local = token(data, "local", "upload", &[]);
    let own = Wheel::new("fixture-own", "0.1").build(dir);
    let out = twine_upload(&clients, &setup.url("/local/"), &local, &own.path);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(setup.filenames("/simple/fixture-own/"), [own.filename.as_str()]);
    let default_json = setup.server.get("/pypi/fixture-own/json").send().assert_status(200).json();
    assert_eq!(default_json["info"]["version"], "0.1");

    // No secret ever reaches the log.
    let log = setup.server.stderr_text();
    assert!(!log.contains(&upload) && !log.contains(&local), "a token secret is in the log");
}

/// Starts a server whose `team` index takes uploads of at most 100 kB, and
/// publishes `fixture-corp` 1.0 (wheel) there.
fn published() -> (Setup, String, Built) {
    let setup = Setup::new("bad", &[], &["--max-upload-bytes", "100000"], &[]);
    let upload = token(setup.data_dir.path(), "team", "upload", &[]);
    let wheel = Wheel::new("fixture-corp", "1.0").build(setup.fixtures.path());
    UploadForm::for_file(&wheel).send(setup.server.addr(), "/team/", Some(&upload)).assert_status(200);
    (setup, upload, wheel)
}

#[track_caller]
fn assert_refused(response: &Response, status: u16, reason: &str) {
    let text = response.text();
    assert_eq!(response.status, status, "{reason}: {}", response.describe());
    assert!(text.contains(reason), "expected {reason:?} in {text:?}");
    assert_eq!(text.trim_end().lines().count(), 1, "one-line reason: {text:?}");
}

#[test]
fn bad_uploads_get_a_clear_4xx_and_change_nothing() {
    let (setup, upload, wheel) = published();
    let addr = setup.server.addr();
    let send = |form: UploadForm| form.send(addr, "/team/", Some(&upload));
    let dir = setup.fixtures.path();
    let good = Wheel::new("fixture-corp", "2.0").build(dir);
    let form = || UploadForm::for_file(&good);

    // Filenames with path parts, `..`, NUL, or that do not parse.
    for bad in ["../fixture_corp-2.0-py3-none-any.whl", "a/fixture_corp-2.0-py3-none-any.whl", ".."] {
        assert_refused(&send(form().file(bad, &good.bytes())), 400, "invalid filename");
    }
    assert_refused(&send(form().file("readme.txt", &good.bytes())), 400, "is not a distribution file");
    assert_eq!(send(form().file("fixture_corp\0-2.0-py3-none-any.whl", &good.bytes())).status, 400);
    // Name or version in the form that contradict the file.
    assert_refused(&send(form().set("name", "fixture-other")), 400, "the form says name");
    assert_refused(&send(form().set("version", "3.0")), 400, "the form says version");
    assert_refused(&send(form().set("filetype", "sdist")), 400, "the form says filetype");
    // A wheel without METADATA, with METADATA of another project, or with
    // a METADATA of 20 MiB (a zip bomb of a few kB).
    let no_metadata = Wheel::new("fixture-corp", "2.1").without_metadata().build(dir);
    assert_refused(&send(UploadForm::for_file(&no_metadata)), 400, "METADATA");
    let other = Wheel::new("fixture-corp", "2.2").metadata_name_field("fixture-evil").build(dir);
    assert_refused(&send(UploadForm::for_file(&other)), 400, "the file's metadata says \"fixture-evil\"");
    let bomb = Wheel::new("fixture-corp", "2.3")
        .without_metadata()
        .extra_file("fixture_corp-2.3.dist-info/METADATA", &vec![b'A'; 20 << 20])
        .build(dir);
    assert!(bomb.size < 100_000, "the bomb is small: {}", bomb.size);
    assert_refused(&send(UploadForm::for_file(&bomb)), 400, "larger than 16 MiB");
    // Wrong digests, hex or base64.
    assert_refused(&send(form().set("sha256_digest", &"0".repeat(64))), 400, "sha256_digest does not match");
    assert_refused(&send(form().field("md5_digest", &"0".repeat(32))), 400, "md5_digest does not match");
    assert_refused(&send(form().field("blake2_256_digest", &"A".repeat(43))), 400, "blake2_256_digest does not match");
    assert_refused(&send(form().set("sha256_digest", "xyz")), 400, "not a 256-bit digest");
    // Truncated: file bytes cut short, or a body without its end.
    let bytes = good.bytes();
    assert_eq!(send(form().file(&good.filename, &bytes[..bytes.len() / 2])).status, 400);
    let mut request = form().request(addr, "/team/", Some(&upload));
    let cut = request.len() - 40;
    request.truncate(cut);
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let old_length = text.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().to_owned();
    let fixed = text.replace(&format!("Content-Length: {old_length}"), &format!("Content-Length: {}", cut - head_end));
    let mut truncated = fixed.into_bytes();
    truncated.extend_from_slice(&request[head_end..]);
    assert_eq!(send_raw(addr, &truncated).status, 400);
    // Oversized: refused from Content-Length before the body is read, and
    // by count when the length is within the form's allowance.
    let huge = format!(
        "POST /team/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10000000000\r\n\r\n--x\r\n",
        basic_auth(&upload)
    );
    assert_refused(&send_raw(addr, huge.as_bytes()), 413, "larger than the limit of 100000 bytes");
    let big = Wheel::new("fixture-corp", "2.4").extra_file("fixture_corp/noise.bin", &noise(110_000)).build(dir);
    assert_refused(&send(UploadForm::for_file(&big)), 413, "larger than the limit");
    // No file, or a form that is not an upload.
    assert_refused(&send(form().without_file()), 400, "no 'content' file part");
    assert_refused(&send(form().set(":action", "remove_pkg")), 400, "unsupported :action");
    assert_refused(&send(form().without("name")), 400, "no \"name\" field");

    // Other bytes under the published name: 409, starting as twine's
    // --skip-existing expects.
    let imposter = Wheel::new("fixture-corp", "1.0").summary("other bytes").build(&dir.join("imposter"));
    let response = send(UploadForm::for_file(&imposter));
    assert_eq!(response.status, 409, "{}", response.describe());
    assert!(response.text().starts_with("File already exists"), "{}", response.text());

    // Nothing above was published or changed.
    assert_eq!(setup.filenames("/team/simple/fixture-corp/"), [wheel.filename.as_str()]);
    let page = setup.page("/team/simple/fixture-corp/");
    assert_eq!(page["files"][0]["hashes"]["sha256"], wheel.sha256.as_str());
    assert_eq!(page["versions"], serde_json::json!(["1.0"]));

    // One sdist per release; a deleted filename is never reused.
    let sdist = Sdist::new("fixture-corp", "1.0").build(dir);
    send(UploadForm::for_file(&sdist)).assert_status(200);
    let zip_sdist = dir.join("zip");
    let second = Sdist::new("fixture-corp", "1.0").build(&zip_sdist);
    let renamed = second.filename.replace("1.0.tar.gz", "1.0.0.tar.gz");
    let response = send(UploadForm::for_file(&second).file(&renamed, &second.bytes()).set("version", "1.0.0"));
    assert_eq!(response.status, 400, "{}", response.describe());
    larder_ok(setup.data_dir.path(), &["delete", "--index", "team", "fixture-corp", "--file", &sdist.filename]);
    assert_refused(&send(UploadForm::for_file(&sdist)), 400, "never reused");
}

/// Bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn two_clients_uploading_one_filename_at_once_publish_exactly_one() {
    let (setup, upload, _) = published();
    let addr = setup.server.addr();
    let dir = setup.fixtures.path();
    let contenders: Vec<Built> = (0..6)
        .map(|i| Wheel::new("fixture-corp", "5.0").summary(&format!("c{i}")).build(&dir.join(format!("c{i}"))))
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = contenders
            .iter()
            .map(|built| scope.spawn(|| UploadForm::for_file(built).send(addr, "/team/", Some(&upload)).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    let winner = &contenders[statuses.iter().position(|s| *s == 200).unwrap()];
    let page = setup.page("/team/simple/fixture-corp/");
    let listed = page["files"].as_array().unwrap().iter().find(|f| f["filename"] == winner.filename.as_str()).unwrap();
    assert_eq!(listed["hashes"]["sha256"], winner.sha256.as_str());
    // The same bytes from several clients at once: every one succeeds.
    let same = Wheel::new("fixture-corp", "6.0").build(dir);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| UploadForm::for_file(&same).send(addr, "/team/", Some(&upload)).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, [200; 4]);
}

#[test]
fn tokens_missing_wrong_scope_other_index_revoked_or_expired_are_refused() {
    let clients = Clients::new();
    let setup = Setup::new("tokens", &["--token-read", "true"], &[], &[]);
    let data = setup.data_dir.path();
    larder_ok(data, &["index", "create", "other"]);
    let reader = token(data, "team", "read", &[]);
    let uploader = token(data, "team", "upload", &[]);
    let foreign = token(data, "other", "admin", &[]);
    let expiring = token(data, "team", "upload", &["--expires", "1s"]);
    let revoked = token(data, "team", "upload", &[]);
    let listed = larder_ok(data, &["token", "list", "--index", "team"]);
    let revoked_id = revoked.split('_').nth(1).unwrap();
    assert!(listed.contains(revoked_id) && !listed.contains(&revoked), "{listed}");
    larder_ok(data, &["token", "revoke", revoked_id]);
    let wheel = Wheel::new("fixture-corp", "1.0").build(setup.fixtures.path());
    let addr = setup.server.addr();
    let send = |token: Option<&str>| UploadForm::for_file(&wheel).send(addr, "/team/", token);

    let missing = send(None);
    assert_refused(&missing, 401, "needs a token");
    assert_eq!(missing.header("www-authenticate"), Some("Basic realm=\"larder\""));
    assert_refused(&send(Some(&reader)), 403, "has scope read");
    assert_refused(&send(Some(&foreign)), 403, "is for index other");
    assert_refused(&send(Some(&revoked)), 401, "was revoked");
    assert_refused(&send(Some("larder_0123_4567")), 401, "unknown token");
    let mut wrong_secret = uploader.clone();
    wrong_secret.replace_range(wrong_secret.len() - 4.., "0000");
    assert_refused(&send(Some(&wrong_secret)), 401, "wrong secret");
    std::thread::sleep(Duration::from_millis(1100));
    assert_refused(&send(Some(&expiring)), 401, "expired");
    let user = setup.server.get("/team/simple/").header("Authorization", "Basic YWxpY2U6c2VjcmV0").send();
    assert_refused(&user, 401, "username __token__");

    // A token-read index: pages need a read token.
    assert_eq!(setup.server.get("/team/simple/").send().status, 401);
    setup.server.get("/team/simple/").header("Authorization", &basic_auth(&reader)).send().assert_status(200);
    // twine with a read token fails with larder's 403.
    let out = twine_upload(&clients, &setup.url("/team/"), &reader, &wheel.path);
    assert!(!out.status.success());
    assert!(describe_output(&out).contains("403"), "{}", describe_output(&out));
    // None of it was published; the right token publishes.
    send(Some(&uploader)).assert_status(200);
    let log = setup.server.stderr_text();
    for secret in [&reader, &uploader, &foreign, &expiring, &revoked] {
        assert!(!log.contains(secret.as_str()), "a token secret is in the log");
    }
    assert!(log.contains("authentication failed"), "failed authentication is logged");
}

#[test]
fn the_release_age_policy_hides_young_upstream_files_but_not_uploads() {
    let clients = Clients::new();
    let upstream_dir = temp_dir("cooldown-upstream");
    let yesterday = yesterday();
    let upstream_files = [
        upstream_file(upstream_dir.path(), Wheel::new("fixture-fresh", "1.0"))
            .upload_time("2020-01-01T00:00:00.000000Z"),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-fresh", "2.0")).upload_time(&yesterday),
    ];
    let setup = Setup::new("cooldown", &["--bases", "upstream", "--min-release-age", "7d"], &[], &upstream_files);
    let data = setup.data_dir.path();
    assert_eq!(setup.filenames("/team/simple/fixture-fresh/"), ["fixture_fresh-1.0-py3-none-any.whl"]);
    assert_eq!(setup.page("/team/simple/fixture-fresh/")["versions"], serde_json::json!(["1.0"]));
    assert_eq!(setup.filenames("/upstream/simple/fixture-fresh/").len(), 2, "the plain mirror has no policy");
    let target = clients.target_venv("cooldown-target");
    let team_simple = setup.url("/team/simple/");
    run_ok(clients.pip().arg("--python").arg(&target).args(["install", "--index-url", &team_simple, "fixture-fresh"]));
    assert_eq!(installed_version(&clients, &target, "fixture-fresh").as_deref(), Some("1.0"));

    // Uploads are exempt: a file uploaded just now is served at once.
    let upload = token(data, "team", "upload", &[]);
    let own = Wheel::new("fixture-own", "1.0").build(setup.fixtures.path());
    UploadForm::for_file(&own).send(setup.server.addr(), "/team/", Some(&upload)).assert_status(200);
    assert_eq!(setup.filenames("/team/simple/fixture-own/"), [own.filename.as_str()]);

    // An exempt project, then no policy: the young file shows.
    larder_ok(data, &["index", "update", "team", "--release-age-exempt", "fixture-fresh"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(setup.filenames("/team/simple/fixture-fresh/").len(), 2);
    larder_ok(data, &["index", "update", "team", "--release-age-exempt", "", "--min-release-age", "0s"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(setup.filenames("/team/simple/fixture-fresh/").len(), 2);
    larder_ok(data, &["index", "update", "team", "--min-release-age", "7d"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(setup.filenames("/team/simple/fixture-fresh/").len(), 1);
    run_ok(clients.uv().args(["pip", "install", "--python"]).arg(&target).args([
        "--index-url",
        &team_simple,
        "--upgrade",
        "fixture-fresh",
    ]));
    assert_eq!(installed_version(&clients, &target, "fixture-fresh").as_deref(), Some("1.0"));
}

/// This time yesterday, in PEP 700 form.
fn yesterday() -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

#[test]
fn yank_unyank_and_delete_from_the_api_and_the_cli_show_at_once() {
    let (setup, upload, wheel) = published();
    let data = setup.data_dir.path();
    let admin = token(data, "team", "admin", &[]);
    let addr = setup.server.addr();
    let api = |action: &str, token: &str, body: &str| admin_api(addr, action, token, body);
    assert_refused(&api("yank", &upload, r#"{"version": "1.0"}"#), 403, "needs scope admin");
    api("yank", &admin, r#"{"version": "1.0", "reason": "broken build"}"#).assert_status(200);
    let page = setup.page("/team/simple/fixture-corp/");
    assert_eq!(page["files"][0]["yanked"], "broken build");
    let html =
        setup.server.get("/team/simple/fixture-corp/").header("Accept", "text/html").send().assert_status(200).text();
    assert!(html.contains(r#"data-yanked="broken build""#), "{html}");
    api("unyank", &admin, &format!(r#"{{"filename": "{}"}}"#, wheel.filename)).assert_status(200);
    assert_eq!(setup.page("/team/simple/fixture-corp/")["files"][0]["yanked"], false);
    // A change by another process shows once the server has read the
    // store's journal (it looks every half second).
    larder_ok(data, &["yank", "--index", "team", "fixture-corp", "1.0", "--reason", "cli"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while setup.page("/team/simple/fixture-corp/")["files"][0]["yanked"] != "cli" {
        assert!(std::time::Instant::now() < deadline, "the CLI's yank never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_refused(&api("delete", &admin, r#"{"version": "9.9"}"#), 404, "no release 9.9");
    api("delete", &admin, r#"{"version": "1.0"}"#).assert_status(200);
    assert!(setup.filenames("/team/simple/fixture-corp/").is_empty(), "deleted, and the name stays reserved");
    assert_refused(&UploadForm::for_file(&wheel).send(addr, "/team/", Some(&upload)), 400, "never reused");
}

#[test]
fn attestations_sent_with_an_upload_are_served_as_provenance() {
    let (setup, upload, _) = published();
    let addr = setup.server.addr();
    let wheel = Wheel::new("fixture-corp", "3.0").build(setup.fixtures.path());
    let attestation = r#"[{"version": 1, "verification_material": {"certificate": "MIIB"}, "envelope": {"statement": "e30", "signature": "c2ln"}}]"#;
    let form = UploadForm::for_file(&wheel);
    assert_refused(&form.clone().field("attestations", "{}").send(addr, "/team/", Some(&upload)), 400, "attestations");
    form.field("attestations", attestation).send(addr, "/team/", Some(&upload)).assert_status(200);
    let page = setup.page("/team/simple/fixture-corp/");
    let listed = page["files"].as_array().unwrap().iter().find(|f| f["filename"] == wheel.filename.as_str()).unwrap();
    assert_eq!(page["meta"]["api-version"], "1.3");
    let url = resolve(&setup.server.url("/team/simple/fixture-corp/"), listed["provenance"].as_str().unwrap());
    let provenance = setup.server.get_url(&url).send().assert_status(200).json();
    assert_eq!(provenance["version"], 1);
    let bundle = &provenance["attestation_bundles"][0];
    assert_eq!(bundle["attestations"], serde_json::from_str::<Value>(attestation).unwrap());
    assert_eq!(bundle["publisher"]["claims"]["index"], "team");
    let html =
        setup.server.get("/team/simple/fixture-corp/").header("Accept", "text/html").send().assert_status(200).text();
    assert!(html.contains("data-provenance="), "{html}");
}

#[test]
fn a_hosted_name_hides_the_bases_for_good_unless_merged() {
    let upstream_dir = temp_dir("shadow-upstream");
    let upstream_files = [
        upstream_file(upstream_dir.path(), Wheel::new("fixture-corp", "9.0")),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-shared", "2.0")),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-dep", "1.0")),
    ];
    let setup = Setup::new("shadow", &["--bases", "upstream", "--merge-bases", "fixture-shared"], &[], &upstream_files);
    let data = setup.data_dir.path();
    larder_ok(data, &["index", "create", "ml", "--bases", "team,upstream"]);
    // The server reads new definitions within a second.
    assert!(wait_until(Duration::from_secs(3), || setup.server.get("/ml/simple/").send().status == 200));
    let upload = token(data, "team", "upload", &[]);
    let addr = setup.server.addr();
    for wheel in [Wheel::new("fixture-corp", "1.0"), Wheel::new("fixture-shared", "1.0")] {
        let built = wheel.build(setup.fixtures.path());
        UploadForm::for_file(&built).send(addr, "/team/", Some(&upload)).assert_status(200);
    }
    assert_eq!(setup.filenames("/team/simple/fixture-corp/"), ["fixture_corp-1.0-py3-none-any.whl"]);
    assert_eq!(
        setup.filenames("/team/simple/fixture-shared/"),
        ["fixture_shared-1.0-py3-none-any.whl", "fixture_shared-2.0-py3-none-any.whl"],
        "merged on purpose"
    );
    assert_eq!(setup.filenames("/ml/simple/fixture-corp/"), ["fixture_corp-1.0-py3-none-any.whl"]);
    assert_eq!(setup.filenames("/ml/simple/fixture-dep/"), ["fixture_dep-1.0-py3-none-any.whl"]);
    let list = setup.page("/ml/simple/");
    let names: Vec<&str> = list["projects"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"fixture-corp") && names.contains(&"fixture-dep"), "{names:?}");

    // Deleting every file keeps the name reserved: the public 9.0 never shows.
    larder_ok(data, &["delete", "--index", "team", "fixture-corp", "1.0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for page in ["/team/simple/fixture-corp/", "/ml/simple/fixture-corp/"] {
        while !setup.filenames(page).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the deletion never showed on {page}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(setup.filenames("/upstream/simple/fixture-corp/"), [PUBLIC_CORP]);
}

#[test]
fn a_crash_in_the_middle_of_an_upload_publishes_nothing() {
    use std::io::Write as _;
    let setup = Setup::new("crash", &[], &[], &[]);
    let data = setup.data_dir.path();
    let upload = token(data, "team", "upload", &[]);
    let wheel = Wheel::new("fixture-corp", "1.0")
        .extra_file("fixture_corp/noise.bin", &noise(400_000))
        .build(setup.fixtures.path());
    let request = UploadForm::for_file(&wheel).request(setup.server.addr(), "/team/", Some(&upload));
    let mut stream = std::net::TcpStream::connect(setup.server.addr()).unwrap();
    stream.write_all(&request[..request.len() * 3 / 4]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let Setup { server, data_dir, fixtures, .. } = setup;
    drop(server);
    drop(stream);

    let server = larder().serve_with(data_dir.path(), &["--min-free-space", "0"]);
    server.get("/team/simple/fixture-corp/").send().assert_status(404);
    UploadForm::for_file(&wheel).send(server.addr(), "/team/", Some(&upload)).assert_status(200);
    let page = server.get("/team/simple/fixture-corp/").header("Accept", JSON).send().assert_status(200).json();
    assert_eq!(page["files"][0]["hashes"]["sha256"], wheel.sha256.as_str());
    drop(fixtures);
}

#[test]
fn files_of_a_token_read_index_need_a_read_token_cold_and_warm() {
    let setup = Setup::new("files", &["--token-read", "true"], &[], &[]);
    let data = setup.data_dir.path();
    larder_ok(data, &["index", "create", "other"]);
    let upload = token(data, "team", "upload", &[]);
    let reader = token(data, "team", "read", &[]);
    let foreign = token(data, "other", "upload", &[]);
    let addr = setup.server.addr();
    let private = Wheel::new("fixture-corp", "1.0").build(setup.fixtures.path());
    let public = Wheel::new("fixture-open", "1.0").build(setup.fixtures.path());
    UploadForm::for_file(&private).send(addr, "/team/", Some(&upload)).assert_status(200);
    // The server reads the new index within a second.
    let to_other = || UploadForm::for_file(&public).send(addr, "/other/", Some(&foreign)).status;
    assert!(wait_until(Duration::from_secs(3), || to_other() == 200));

    // The page's link and the default /files/ URL are one URL; both refuse
    // anonymous downloads, the first time and once the file is warm.
    let page = setup
        .server
        .get("/team/simple/fixture-corp/")
        .header("Accept", JSON)
        .header("Authorization", &basic_auth(&reader))
        .send()
        .assert_status(200)
        .json();
    let link = resolve(&setup.server.url("/team/simple/fixture-corp/"), page["files"][0]["url"].as_str().unwrap());
    let path = format!("/files/{}/{}", private.sha256, private.filename);
    assert_eq!(link.path(), path);
    for round in ["cold", "warm"] {
        assert_refused(&setup.server.get(&path).send(), 401, "needs a token");
        assert_refused(&setup.server.get(&format!("{path}.metadata")).send(), 401, "needs a token");
        let other = setup.server.get(&path).header("Authorization", &basic_auth(&foreign)).send();
        assert_refused(&other, 403, "is for index other");
        let got = setup.server.get(&path).header("Authorization", &basic_auth(&reader)).send();
        assert_eq!(got.assert_status(200).body, std::fs::read(&private.path).unwrap(), "{round}");
        let public_path = format!("/files/{}/{}", public.sha256, public.filename);
        setup.server.get(&public_path).send().assert_status(200);
    }

    // Opening the index opens its files, warm ones included.
    larder_ok(data, &["index", "update", "team", "--token-read", "false"]);
    let opened = wait_until(Duration::from_secs(5), || setup.server.get(&path).send().status == 200);
    assert!(opened, "the file stayed protected after the index was opened");
}

#[test]
fn archived_and_quarantined_projects_take_no_uploads_and_say_so_on_pages() {
    let setup = Setup::new("status", &[], &[], &[]);
    let data = setup.data_dir.path();
    let upload = token(data, "team", "upload", &[]);
    let admin = token(data, "team", "admin", &[]);
    let addr = setup.server.addr();
    let dir = setup.fixtures.path();
    UploadForm::for_file(&Wheel::new("fixture-corp", "1.0").build(dir))
        .send(addr, "/team/", Some(&upload))
        .assert_status(200);

    // The admin API archives it: pages say so, uploads get a 400 with why.
    let status = |body: &str, token: &str| admin_api(addr, "status", token, body);
    assert_refused(&status(r#"{"status": "archived"}"#, &upload), 403, "needs scope admin");
    assert_refused(&status(r#"{"status": "retired"}"#, &admin), 400, "unknown project status");
    status(r#"{"status": "archived", "reason": "moved to fixture-corp2"}"#, &admin).assert_status(200);
    let page = setup.page("/team/simple/fixture-corp/");
    assert_eq!(page["project-status"]["status"], "archived");
    assert_eq!(page["project-status"]["reason"], "moved to fixture-corp2");
    assert_eq!(page["files"].as_array().unwrap().len(), 1, "an archived project keeps its files");
    let newer = Wheel::new("fixture-corp", "2.0").build(dir);
    let refused = UploadForm::for_file(&newer).send(addr, "/team/", Some(&upload));
    assert_refused(
        &refused,
        400,
        "fixture-corp in index team is archived: it takes no uploads (moved to fixture-corp2)",
    );

    // The CLI quarantines it: no files listed, still no uploads; active
    // opens it again.
    // (Another process's change shows within a second or so.)
    larder_ok(data, &["project-status", "--index", "team", "fixture-corp", "quarantined"]);
    let shown = || setup.page("/team/simple/fixture-corp/")["project-status"]["status"] == "quarantined";
    assert!(wait_until(Duration::from_secs(5), shown));
    let html = setup.server.get("/team/simple/fixture-corp/").header("Accept", "text/html").send().text();
    assert!(html.contains(r#"<meta name="pypi:project-status" content="quarantined">"#), "{html}");
    assert!(setup.filenames("/team/simple/fixture-corp/").is_empty());
    assert_refused(&UploadForm::for_file(&newer).send(addr, "/team/", Some(&upload)), 400, "is quarantined");
    larder_ok(data, &["project-status", "--index", "team", "fixture-corp", "active"]);
    UploadForm::for_file(&newer).send(addr, "/team/", Some(&upload)).assert_status(200);
    let active = || setup.page("/team/simple/fixture-corp/").get("project-status").is_none();
    assert!(wait_until(Duration::from_secs(5), active));
    let unknown = run(larder()
        .command()
        .args(["project-status", "--index", "team", "nothing-here", "archived", "--data-dir"])
        .arg(data));
    assert!(!unknown.status.success() && describe_output(&unknown).contains("no project nothing-here"));
}

#[test]
fn mirror_and_export_of_a_named_index_follow_its_shadowing_and_release_age() {
    let upstream_dir = temp_dir("named-export-upstream");
    let upstream_files = [
        upstream_file(upstream_dir.path(), Wheel::new("fixture-corp", "9.0")),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-dep", "1.0")).upload_time("2020-01-01T00:00:00.000000Z"),
        upstream_file(upstream_dir.path(), Wheel::new("fixture-dep", "2.0")).upload_time(&yesterday()),
    ];
    let setup = Setup::new("named-export", &["--bases", "upstream", "--min-release-age", "7d"], &[], &upstream_files);
    let data = setup.data_dir.path();
    let upload = token(data, "team", "upload", &[]);
    let own = Wheel::new("fixture-corp", "1.0").build(setup.fixtures.path());
    UploadForm::for_file(&own).send(setup.server.addr(), "/team/", Some(&upload)).assert_status(200);

    // Mirroring for team: the hosted name is not fetched from upstream, the
    // file too young for team's policy is held back.
    let mirror = ["mirror", "--index", "team", "--upstream", &setup.upstream_url, "--quiet"];
    let out = larder_ok(data, &[&mirror[..], &["--project", "fixture-corp", "--project", "fixture-dep"]].concat());
    assert!(out.contains("hidden by hosted projects of the same name: fixture-corp"), "{out}");
    assert!(out.contains("mirrored 1 projects: 1 files downloaded"), "{out}");

    // The static tree of team: the same pages team serves, from what is stored.
    let pages = |tree: &Path, project: &str| -> Vec<String> {
        let text = std::fs::read_to_string(tree.join("simple").join(project).join("index.json")).unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        page["files"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap().to_owned()).collect()
    };
    let tree = temp_dir("named-export-tree");
    larder_ok(data, &["export", "--index", "team", "--to", tree.path().to_str().unwrap()]);
    assert_eq!(pages(tree.path(), "fixture-corp"), [own.filename.as_str()]);
    assert_eq!(pages(tree.path(), "fixture-dep"), ["fixture_dep-1.0-py3-none-any.whl"]);
    assert!(tree.path().join("files").join(&own.sha256).join(&own.filename).is_file());
    // The default index holds neither the upload nor the public lookalike.
    let default_tree = temp_dir("named-export-default");
    larder_ok(data, &["export", "--to", default_tree.path().to_str().unwrap()]);
    assert!(!default_tree.path().join("simple/fixture-corp").exists());

    // A bundle of team, imported elsewhere and served by an index of the
    // same definition, gives the same tree.
    let bundle = setup.fixtures.path().join("team.tar");
    larder_ok(data, &["export", "--index", "team", "--bundle", bundle.to_str().unwrap()]);
    let other = temp_dir("named-export-other");
    let import = || run(larder().command().arg("import").arg(&bundle).arg("--data-dir").arg(other.path()));
    let refused = import();
    assert!(
        !refused.status.success() && describe_output(&refused).contains("create it"),
        "{}",
        describe_output(&refused)
    );
    larder_ok(other.path(), &["index", "create", "team", "--bases", "upstream", "--min-release-age", "7d"]);
    assert!(import().status.success());
    let again = temp_dir("named-export-again");
    larder_ok(other.path(), &["export", "--index", "team", "--to", again.path().to_str().unwrap()]);
    for project in ["fixture-corp", "fixture-dep"] {
        let read = |tree: &Path| std::fs::read(tree.join("simple").join(project).join("index.json")).unwrap();
        assert_eq!(read(again.path()), read(tree.path()), "{project}");
    }
    let unknown = run(larder()
        .command()
        .args(["export", "--index", "nope", "--to"])
        .arg(again.path())
        .arg("--data-dir")
        .arg(data));
    assert!(!unknown.status.success() && describe_output(&unknown).contains("no index named \"nope\""));
}
