//! A proxied page says what the upstream says: every file the upstream
//! lists, whatever its name (eggs, installers, post-release and non-PEP 440
//! versions, files named for another project), and the upstream's values
//! unchanged (its `versions` list, yank reasons with their whitespace,
//! upload-time strings, its serial), in JSON and HTML, on a cold page and
//! on the same page served again from memory.
//!
//! Every test starts its own fixture upstream and `larder serve`.

mod common;

use std::path::Path;

use common::*;

const PROJECT: &str = "fixture-old";
const SERIAL: u64 = 4242;
const YANK_REASON: &str = "  broken build, see #12\t ";
/// The upstream's own `versions`: its order and spelling, a version with
/// no file (3.0), and none of the unreadable names' versions.
const VERSIONS: [&str; 5] = ["2.0", "0.4.0beta1", "1.0-1", "1.0", "3.0"];

struct OldProject {
    files: Vec<Built>,
    /// `(filename, upload-time as the upstream writes it)`.
    times: Vec<(String, &'static str)>,
    yanked: String,
    egg: Built,
}

/// An old project with the shapes of the public index: a wheel (yanked
/// with a reason that has edge whitespace), an sdist with a legacy version
/// spelling, an egg, Windows installers, a `-N` post-release sdist, a
/// version that is not PEP 440, and a file named for another project; no
/// metadata files; upload times with 0, 3 and 6 decimals.
fn old_project(dir: &Path, upstream: &FixtureUpstream) -> OldProject {
    let wheel = Wheel::new(PROJECT, "2.0").build(dir);
    let legacy = Sdist::new(PROJECT, "0.4.0beta1").build(dir);
    let other = |filename: &str| Built::other(dir, PROJECT, filename, format!("bytes of {filename}").as_bytes());
    let egg = other("fixture_old-1.0-py2.7.egg");
    let files = vec![
        wheel.clone(),
        legacy.clone(),
        egg.clone(),
        other("fixture-old-1.0.win32.exe"),
        other("fixture-old-1.0.win-amd64-py2.7.msi"),
        other("fixture-old-1.0-1.tar.gz"),
        other("fixture-old-2.0-dev-r1234.tar.gz"),
        other("fixtureold_renamed-0.1.zip"),
    ];
    let times = vec![
        (wheel.filename.clone(), "2006-05-12T22:42:46Z"),
        (legacy.filename.clone(), "2024-01-02T03:04:05.123Z"),
        (egg.filename.clone(), "2024-01-02T03:04:05.123456Z"),
    ];
    for built in &files {
        let mut file = UpstreamFile::new(built);
        if let Some((_, time)) = times.iter().find(|(name, _)| *name == built.filename) {
            file = file.upload_time(time);
        }
        if built.filename == wheel.filename {
            file = file.yanked(YANK_REASON);
        }
        upstream.add_file(file);
    }
    upstream.set_project_meta(
        PROJECT,
        ProjectMeta {
            versions: Some(VERSIONS.map(str::to_owned).to_vec()),
            last_serial: Some(SERIAL),
            status: Some(("deprecated".to_owned(), Some("use fixture-new".to_owned()))),
            namespace: Some(namespace()),
            ..ProjectMeta::default()
        },
    );
    OldProject { files, times, yanked: wheel.filename, egg }
}

/// A PEP 752 namespace object with a key larder knows nothing of.
fn namespace() -> Value {
    serde_json::json!({"prefix": "fixture", "authorized": true, "open": false, "future": [1, {"x": null}]})
}

fn serve(data_dir: &Path, upstream: &FixtureUpstream) -> Server {
    larder().serve_with(data_dir, &["--upstream", upstream.simple_url().as_str()])
}

fn all_filenames(project: &OldProject) -> Vec<String> {
    let mut names: Vec<String> = project.files.iter().map(|f| f.filename.clone()).collect();
    names.sort();
    names
}

/// Checks what both upstream formats carry, in larder's HTML page: every
/// file, the yank reason as written, the serial header.
#[track_caller]
fn check_html(server: &Server, project: &OldProject, when: &str) {
    let r = server.get(&format!("/simple/{PROJECT}/")).header("Accept", "text/html").send();
    r.assert_status(200);
    assert_eq!(r.header("x-pypi-last-serial"), Some(SERIAL.to_string().as_str()), "{when}: {}", r.describe());
    let anchors = html::tags(&r.text(), "a");
    let mut names: Vec<String> = anchors.iter().map(|a| a.text.clone()).collect();
    names.sort();
    assert_eq!(names, all_filenames(project), "{when}: every upstream file is listed in HTML");
    let yanked: Vec<(&str, Option<&str>)> = anchors
        .iter()
        .filter(|a| a.attr("data-yanked").is_some())
        .map(|a| (a.text.as_str(), a.attr("data-yanked")))
        .collect();
    assert_eq!(yanked, [(project.yanked.as_str(), Some(YANK_REASON))], "{when}: yank reason as the upstream wrote it");
}

/// Checks larder's JSON page: every file, the serial, the yank reason; and
/// what only a JSON upstream gives: its `versions` and upload times.
#[track_caller]
fn check_json(server: &Server, project: &OldProject, upstream_json: bool, when: &str) -> Value {
    let r = server.get(&format!("/simple/{PROJECT}/")).header("Accept", JSON).send();
    r.assert_status(200);
    let page = r.json();
    assert_eq!(r.header("x-pypi-last-serial"), Some(SERIAL.to_string().as_str()), "{when}: {}", r.describe());
    assert_eq!(page["meta"]["_last-serial"], SERIAL, "{when}: the upstream's serial; page {page}");
    assert_eq!(json_filenames(&page), all_filenames(project), "{when}: every upstream file is listed in JSON");
    assert_eq!(json_file(&page, &project.yanked)["yanked"], YANK_REASON, "{when}: page {page}");
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"), "{when}: a proxied page is cached briefly");
    let etag = r.expect_header("etag");
    let again = server.get(&format!("/simple/{PROJECT}/")).header("Accept", JSON).header("If-None-Match", etag).send();
    assert_eq!(again.status, 304, "{when}: {}", again.describe());
    assert_eq!(again.header("etag"), Some(etag), "{when}: a 304 repeats the ETag");
    // The JSON API says the same serial, a number, and in its header.
    let api = server.get(&format!("/pypi/{PROJECT}/json")).send();
    api.assert_status(200);
    assert_eq!(api.header("x-pypi-last-serial"), Some(SERIAL.to_string().as_str()), "{when}: {}", api.describe());
    assert_eq!(api.json()["last_serial"], SERIAL, "{when}: the JSON API's serial");
    // PEP 792 status from either format.
    let status = serde_json::json!({"status": "deprecated", "reason": "use fixture-new"});
    assert_eq!(page["project-status"], status, "{when}: the upstream's project status; {page}");
    if upstream_json {
        assert_eq!(page["namespace"], namespace(), "{when}: PEP 752 namespace passed through; {page}");
        assert_eq!(page["meta"]["api-version"], "1.5", "{when}: {page}");
        assert_eq!(page["versions"], serde_json::json!(VERSIONS), "{when}: the upstream's versions, unchanged");
        for (filename, time) in &project.times {
            assert_eq!(json_file(&page, filename)["upload-time"], *time, "{when}: upload-time as written; {page}");
        }
    }
    page
}

#[test]
fn a_json_upstream_page_is_passed_through_whole_and_unchanged() {
    let fixtures = temp_dir("fidelity-json-fx");
    let data = temp_dir("fidelity-json-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Json);
    let project = old_project(fixtures.path(), &upstream);
    let server = serve(data.path(), &upstream);

    let page = check_json(&server, &project, true, "cold");
    check_html(&server, &project, "cold");
    check_json(&server, &project, true, "warm");
    check_html(&server, &project, "warm");
    assert_eq!(upstream.count(&FixtureUpstream::page_path(PROJECT)), 1, "{}", upstream.describe_seen());

    // A file larder cannot read the name of is still proxied.
    let url = resolve(
        &server.url(&format!("/simple/{PROJECT}/")),
        json_file(&page, &project.egg.filename)["url"].as_str().unwrap(),
    );
    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert_eq!(r.body, project.egg.bytes(), "the egg's bytes through larder");
}

#[test]
fn an_html_upstream_page_is_passed_through_whole() {
    let fixtures = temp_dir("fidelity-html-fx");
    let data = temp_dir("fidelity-html-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Html);
    let project = old_project(fixtures.path(), &upstream);
    let server = serve(data.path(), &upstream);

    check_html(&server, &project, "cold");
    let page = check_json(&server, &project, false, "cold");
    // Without an upstream list, larder derives `versions` from the names
    // it can read, a post-release sdist included.
    for version in ["0.4.0b1", "1.0.post1", "2.0"] {
        assert!(page["versions"].as_array().unwrap().iter().any(|v| v == version), "{version} in {page}");
    }
    check_html(&server, &project, "warm");
    check_json(&server, &project, false, "warm");
}

/// `HEAD` and ranges of a file not stored are answered without
/// downloading it: from the page's size or the upstream's answer to one
/// ranged request. Nothing is stored until a client asks for the whole
/// file; then ranges come from the store.
#[test]
fn head_and_ranges_of_a_cold_file_never_fetch_or_store_it_whole() {
    let fixtures = temp_dir("fidelity-range-fx");
    let blob = larder_testkit::proxy::incompressible(50_000, 12);
    let wheel = Wheel::new("fixture-ranged", "1.0").extra_file("data/blob.bin", &blob).build(fixtures.path());
    for format in [UpstreamFormat::Json, UpstreamFormat::Html] {
        let data = temp_dir("fidelity-range-data");
        let upstream = FixtureUpstream::start(format);
        upstream.add(&wheel);
        let server = serve(data.path(), &upstream);
        let what = format!("{format:?} upstream");
        let page = server.get("/simple/fixture-ranged/").header("Accept", JSON).send().json();
        let url =
            resolve(&server.url("/simple/fixture-ranged/"), json_file(&page, &wheel.filename)["url"].as_str().unwrap());
        let file_path = FixtureUpstream::file_path(&wheel);
        let size = wheel.size;

        let head = Request::to_url(server.addr(), "HEAD", &url).send();
        head.assert_status(200);
        assert_eq!(head.header("content-length"), Some(size.to_string().as_str()), "{what}: {}", head.describe());
        assert_eq!(head.header("accept-ranges"), Some("bytes"), "{what}: {}", head.describe());
        assert!(head.header("etag").is_some_and(|e| e.contains(&wheel.sha256)), "{what}: {}", head.describe());

        let bytes = wheel.bytes();
        for (range, first, last) in [("bytes=-100", size - 100, size - 1), ("bytes=0-9", 0, 9)] {
            let r = server.get_url(&url).header("Range", range).send();
            assert_eq!(r.status, 206, "{what}: {range}: {}", r.describe());
            assert_eq!(r.header("content-range"), Some(format!("bytes {first}-{last}/{size}").as_str()), "{what}");
            assert_eq!(r.header("accept-ranges"), Some("bytes"), "{what}");
            assert_eq!(r.body, bytes[first as usize..=last as usize], "{what}: {range}");
        }
        let r = server.get_url(&url).header("Range", &format!("bytes={}-", size + 10)).send();
        assert_eq!(r.status, 416, "{what}: {}", r.describe());

        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!larder_testkit::proxy::blob_stored(data.path(), &wheel.sha256), "{what}: stored without a whole GET");
        assert!(
            upstream.seen().iter().filter(|s| s.path == file_path).all(|s| s.range.is_some()),
            "{what}: the upstream was asked for the whole file: {}",
            upstream.describe_seen()
        );
        assert!(upstream.file_bytes_sent() < 1000, "{what}: {} file bytes fetched", upstream.file_bytes_sent());

        // A whole GET downloads and stores it; ranges then come from the store.
        let whole = server.get_url(&url).send();
        whole.assert_status(200);
        assert_eq!(whole.body, bytes, "{what}");
        let stored = larder_testkit::proxy::eventually(std::time::Duration::from_secs(10), || {
            larder_testkit::proxy::blob_stored(data.path(), &wheel.sha256)
        });
        assert!(stored, "{what}: the whole GET was not stored");
        let before = upstream.total();
        let r = server.get_url(&url).header("Range", "bytes=0-9").send();
        assert_eq!((r.status, r.body.as_slice()), (206, &bytes[..10]), "{what}: {}", r.describe());
        assert_eq!(upstream.total(), before, "{what}: a stored file's range asked upstream");
        drop(server);
    }
}

/// An upstream without metadata files: larder advertises `.metadata` for
/// every wheel (PEP 714 `true`) and answers it by reading the wheel's zip
/// directory and METADATA member by ranges, then keeps it; pip and uv
/// resolve through it without a whole wheel fetched from the upstream.
#[test]
fn wheel_metadata_comes_from_ranges_when_the_upstream_has_none() {
    let fixtures = temp_dir("fidelity-meta-fx");
    let data = temp_dir("fidelity-meta-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Negotiate);
    let blob = larder_testkit::proxy::incompressible(1_500_000, 7);
    let app = Wheel::new("fixture-rapp", "1.0")
        .requires_dist("fixture-rlib")
        .extra_file("data/a.bin", &blob)
        .build(fixtures.path());
    let lib = Wheel::new("fixture-rlib", "2.0").extra_file("data/b.bin", &blob).build(fixtures.path());
    upstream.add(&app);
    upstream.add(&lib);
    let server = serve(data.path(), &upstream);

    let r = server.get("/simple/fixture-rapp/").header("Accept", JSON).send();
    let page = r.json();
    let file = json_file(&page, &app.filename);
    assert_eq!(file["core-metadata"], true, "advertised without a hash: {file}");
    let html = server.get("/simple/fixture-rapp/").header("Accept", "text/html").send().text();
    assert!(html.contains(r#"data-core-metadata="true""#), "{html}");

    let url = resolve(&server.url("/simple/fixture-rapp/"), &format!("{}.metadata", file["url"].as_str().unwrap()));
    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert_eq!(Some(r.body.clone()), app.metadata, "the wheel's METADATA, byte for byte");
    assert!(upstream.file_bytes_sent() < app.size / 2, "{} of {} bytes fetched", upstream.file_bytes_sent(), app.size);
    assert!(!larder_testkit::proxy::blob_stored(data.path(), &app.sha256), "the wheel was stored");
    let before = upstream.total();
    assert_eq!(server.get_url(&url).send().body, r.body);
    assert_eq!(upstream.total(), before, "kept: asked again, nothing fetched");

    // pip and uv resolve through larder without fetching a whole wheel.
    let clients = Clients::new();
    let index = server.url("/simple/").to_string();
    let target = clients.target_venv("target");
    run_ok(clients.pip().arg("--python").arg(&target).args([
        "install",
        "--dry-run",
        "--index-url",
        &index,
        "fixture-rapp",
    ]));
    let input = clients.work_dir().join("requirements.in");
    std::fs::write(&input, "fixture-rapp\n").unwrap();
    let out = run_ok(clients.uv().args(["pip", "compile", "--no-header", "--index-url", &index]).arg(&input));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fixture-rlib==2.0"), "{}", describe_output(&out));
    let whole: Vec<_> =
        upstream.seen().into_iter().filter(|s| s.path.starts_with("/packages/") && s.range.is_none()).collect();
    assert!(whole.is_empty(), "whole files fetched while resolving: {whole:?}");
    assert!(upstream.file_bytes_sent() < (app.size + lib.size) / 10, "{} bytes fetched", upstream.file_bytes_sent());
}

/// An HTML upstream gives no upload time, and larder invents none: not on
/// the cold page, and not once it stored the file (when it fetched a file
/// says nothing of when it was uploaded; clients' release-age filters
/// would take it for a new upload). Restarting does not change that.
#[test]
fn no_upload_time_is_invented_for_a_file_an_html_upstream_gives_none_for() {
    let fixtures = temp_dir("fidelity-time-fx");
    let data = temp_dir("fidelity-time-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Html);
    let wheel = Wheel::new("fixture-timeless", "1.0").build(fixtures.path());
    upstream.add(&wheel);
    let server = serve(data.path(), &upstream);
    let page_url = server.url("/simple/fixture-timeless/");
    let times = |server: &Server| {
        let page = server.get("/simple/fixture-timeless/").header("Accept", JSON).send().json();
        let api = server.get("/pypi/fixture-timeless/json").send().json();
        let file = json_file(&page, &wheel.filename).clone();
        (file, api["urls"].clone())
    };
    let (cold, _) = times(&server);
    assert!(cold.get("upload-time").is_none(), "cold: {cold}");

    let url = resolve(&page_url, cold["url"].as_str().unwrap());
    server.get_url(&url).send().assert_status(200);
    let stored = larder_testkit::proxy::eventually(std::time::Duration::from_secs(10), || {
        larder_testkit::proxy::blob_stored(data.path(), &wheel.sha256)
    });
    assert!(stored, "the whole GET was not stored");
    let (file, urls) = times(&server);
    assert!(file.get("upload-time").is_none(), "stored: the fetch time became the upload time: {file}");
    assert!(urls.to_string().contains(&wheel.filename), "the JSON API lists the file: {urls}");
    assert!(urls[0]["upload_time_iso_8601"].is_null(), "stored: {urls}");
    drop(server);
    let server = serve(data.path(), &upstream);
    let (file, _) = times(&server);
    assert!(file.get("upload-time").is_none(), "after a restart: {file}");
}

/// Filenames with characters that mean something in a URL (`+` of a local
/// version, `%`, spaces, `#`, `?`, non-ASCII) are percent-encoded in
/// larder's links, in HTML and JSON, and the encoded URL serves the file:
/// cold (streamed from the upstream), and again once it is stored.
#[test]
fn file_urls_percent_encode_the_filename_and_serve_it() {
    let fixtures = temp_dir("fidelity-encode-fx");
    let wheel = Wheel::new("fixture-odd", "1.0+cpu.7").build(fixtures.path());
    let odd = Built::other(fixtures.path(), "fixture-odd", "fixture-odd-2.0 (100% #1?) é.tar.gz", b"odd bytes");
    assert!(wheel.filename.contains('+'), "{}", wheel.filename);
    for format in [UpstreamFormat::Json, UpstreamFormat::Html] {
        let data = temp_dir("fidelity-encode-data");
        let upstream = FixtureUpstream::with_files(format, &[wheel.clone(), odd.clone()]);
        let server = serve(data.path(), &upstream);
        let what = format!("{format:?} upstream");
        let page_url = server.url("/simple/fixture-odd/");
        let json = server.get("/simple/fixture-odd/").header("Accept", JSON).send().json();
        let html = server.get("/simple/fixture-odd/").header("Accept", "text/html").send().text();
        let anchors = html::tags(&html, "a");
        for built in [&wheel, &odd] {
            let json_url = json_file(&json, &built.filename)["url"].as_str().unwrap().to_owned();
            let anchor = anchors.iter().find(|a| a.text == built.filename).unwrap_or_else(|| panic!("{html}"));
            let href = anchor.attr("href").unwrap().split('#').next().unwrap().to_owned();
            assert_eq!(href, json_url, "{what}: one URL in both formats");
            let segment = json_url.rsplit('/').next().unwrap();
            assert!(
                segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{what}: {segment} is not percent-encoded"
            );
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().unwrap();
            assert_eq!(decoded, built.filename, "{what}: the URL names the file");
            let url = resolve(&page_url, &json_url);
            for when in ["cold", "stored"] {
                let r = server.get_url(&url).send();
                r.assert_status(200);
                assert_eq!(r.body, built.bytes(), "{what}, {when}: {}", built.filename);
                let stored = larder_testkit::proxy::eventually(std::time::Duration::from_secs(10), || {
                    larder_testkit::proxy::blob_stored(data.path(), &built.sha256)
                });
                assert!(stored, "{what}: {} not stored", built.filename);
            }
        }
        assert_eq!(upstream.count(&FixtureUpstream::file_path(&odd)), 1, "{what}: {}", upstream.describe_seen());
    }
}

/// While a client downloads a file whole, a range of it whose bytes have
/// arrived is answered from that download, not asked of the upstream; a
/// range the download has not reached yet still goes to the upstream.
#[test]
fn a_range_of_a_file_being_downloaded_comes_from_the_download() {
    let fixtures = temp_dir("fidelity-follow-fx");
    let data = temp_dir("fidelity-follow-data");
    let blob = larder_testkit::proxy::incompressible(400_000, 5);
    let wheel = Wheel::new("fixture-follow", "1.0").extra_file("data/blob.bin", &blob).build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&wheel));
    upstream.hold_file(&wheel.filename, std::time::Duration::from_secs(30));
    let server = serve(data.path(), &upstream);
    let page = server.get("/simple/fixture-follow/").header("Accept", JSON).send().json();
    let url =
        resolve(&server.url("/simple/fixture-follow/"), json_file(&page, &wheel.filename)["url"].as_str().unwrap());
    let (bytes, size) = (wheel.bytes(), wheel.size);

    // A whole GET starts the download; the upstream holds it after half.
    let whole = larder_testkit::proxy::send_get(server.addr(), &target_of(&url), &[]).unwrap();
    let half = larder_testkit::proxy::eventually(std::time::Duration::from_secs(10), || {
        upstream.file_bytes_sent() >= size / 2
    });
    assert!(half, "the upstream sent {} of {size} bytes", upstream.file_bytes_sent());
    std::thread::sleep(std::time::Duration::from_millis(300));

    let r = server.get_url(&url).header("Range", "bytes=100-1099").send();
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.header("content-range"), Some(format!("bytes 100-1099/{size}").as_str()), "{}", r.describe());
    assert_eq!(r.body, bytes[100..1100], "the range's bytes");
    let r = server.get_url(&url).header("Range", "bytes=-100").send();
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[bytes.len() - 100..]), "{}", r.describe());
    let file_path = FixtureUpstream::file_path(&wheel);
    let asked: Vec<Option<String>> =
        upstream.seen().into_iter().filter(|s| s.path == file_path).map(|s| s.range).collect();
    assert_eq!(
        asked,
        [None, Some("bytes=-100".to_owned())],
        "only the range the download has not reached is asked of the upstream: {}",
        upstream.describe_seen()
    );

    upstream.release_holds();
    let received = larder_testkit::proxy::read_received(whole, "whole GET").unwrap();
    assert!(received.complete && received.body == bytes, "the whole GET: {} bytes", received.body.len());
}
