//! The caching proxy's pages: everything a fixture upstream says about a
//! project is served by larder in both formats, file links always point at
//! larder, PEP 658 metadata is passed through or extracted from the stored
//! wheel, and a local project shadows the upstream one completely.
//!
//! Every test starts its own fixture upstream (in-process, 127.0.0.1) and
//! its own `larder serve --upstream`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use larder_testkit::proxy::eventually;

fn serve(data_dir: &Path, upstream: &FixtureUpstream, extra: &[&str]) -> Server {
    let url = upstream.simple_url();
    let mut args = vec!["--upstream", url.as_str()];
    args.extend_from_slice(extra);
    larder().serve_with(data_dir, &args)
}

fn get_json(server: &Server, project: &str) -> (Response, Value) {
    let r = server.get(&format!("/simple/{project}/")).header("Accept", JSON).send();
    r.assert_status(200);
    let v = r.json();
    (r, v)
}

fn get_html(server: &Server, project: &str) -> String {
    let r = server.get(&format!("/simple/{project}/")).header("Accept", "text/html").send();
    r.assert_status(200);
    r.text()
}

/// Asserts `url` (as written in a page of `server` for `project`) resolves
/// to a `/files/` URL on larder itself, never the upstream; returns it.
#[track_caller]
fn assert_points_at_larder(server: &Server, upstream: &FixtureUpstream, project: &str, url: &str) -> Url {
    assert!(!url.contains(&upstream.addr().to_string()), "file URL {url} points at the upstream {}", upstream.addr());
    let resolved = resolve(&server.url(&format!("/simple/{project}/")), url);
    assert_eq!(
        (resolved.host_str(), resolved.port()),
        (Some("127.0.0.1"), Some(server.addr().port())),
        "file URL {url} does not point at larder ({})",
        server.addr()
    );
    assert!(resolved.path().starts_with("/files/"), "file URL {url} is not under /files/");
    resolved
}

const TRACKS: &str = "https://other-index.invalid/simple/fixture-meta/";
const ALTERNATE: &str = "https://mirror-a.invalid/simple/fixture-meta/";
const STATUS_REASON: &str = "moved to fixture-meta2 & friends <see docs>";
const YANK_REASON: &str = "broken build, use 2.0 \"please\"";
const RP: &str = ">=3.8,<4";

struct MetaProject {
    whl1: Built,
    whl2: Built,
    sdist2: Built,
}

/// `fixture-meta`: 1.0 wheel yanked with a reason; 2.0 wheel with
/// requires-python and provenance; 2.0 sdist yanked without a reason;
/// tracks, alternate locations, `archived` status with a reason, and an
/// extra version 0.9 with no files (JSON only).
fn meta_project(dir: &Path, upstream: &FixtureUpstream) -> MetaProject {
    let whl1 = Wheel::new("fixture-meta", "1.0").requires_dist("fixture-x").build(dir);
    let whl2 = Wheel::new("fixture-meta", "2.0").requires_python(RP).build(dir);
    let sdist2 = Sdist::new("fixture-meta", "2.0").requires_python(RP).build(dir);
    upstream.add_file(UpstreamFile::new(&whl1).yanked(YANK_REASON).upload_time("2023-05-06T07:08:09.123456Z"));
    upstream.add_file(
        UpstreamFile::new(&whl2).requires_python(RP).with_provenance().upload_time("2024-02-03T04:05:06.654321Z"),
    );
    upstream
        .add_file(UpstreamFile::new(&sdist2).requires_python(RP).yanked("").upload_time("2024-02-03T04:05:07.000001Z"));
    upstream.set_project_meta(
        "fixture-meta",
        ProjectMeta {
            tracks: vec![TRACKS.into()],
            alternate_locations: vec![ALTERNATE.into()],
            status: Some(("archived".into(), Some(STATUS_REASON.into()))),
            extra_versions: vec!["0.9".into()],
            ..ProjectMeta::default()
        },
    );
    upstream.set_serve_metadata(true);
    MetaProject { whl1, whl2, sdist2 }
}

/// Checks the page-level and per-file fields of larder's JSON page for
/// `fixture-meta` that both upstream formats carry.
#[track_caller]
fn check_common_json(server: &Server, upstream: &FixtureUpstream, m: &MetaProject, page: &Value) {
    assert_eq!(page["meta"]["api-version"], "1.4", "status present: api-version 1.4; page {page}");
    assert_eq!(page["meta"]["tracks"], serde_json::json!([TRACKS]), "tracks; page {page}");
    assert_eq!(
        page["project-status"],
        serde_json::json!({"status": "archived", "reason": STATUS_REASON}),
        "project-status; page {page}"
    );
    assert_eq!(json_filenames(page).len(), 3, "page {page}");
    for (built, yanked, rp, metadata) in [
        (&m.whl1, serde_json::json!(YANK_REASON), None, m.whl1.core_metadata_sha256()),
        (&m.whl2, serde_json::json!(false), Some(RP), m.whl2.core_metadata_sha256()),
        (&m.sdist2, serde_json::json!(true), Some(RP), None),
    ] {
        let f = json_file(page, &built.filename);
        assert_eq!(f["hashes"]["sha256"], built.sha256.as_str(), "{f}");
        assert_eq!(f["yanked"], yanked, "yanked of {}: {f}", built.filename);
        assert_eq!(f["requires-python"].as_str(), rp, "requires-python of {}: {f}", built.filename);
        let want_metadata = match &metadata {
            Some(h) => serde_json::json!({"sha256": h}),
            None => serde_json::json!(false),
        };
        assert_eq!(f["core-metadata"], want_metadata, "core-metadata of {}: {f}", built.filename);
        assert_eq!(f["dist-info-metadata"], want_metadata, "dist-info-metadata of {}: {f}", built.filename);
        let url = f["url"].as_str().expect("url");
        let resolved = assert_points_at_larder(server, upstream, "fixture-meta", url);
        // The link works and gives the right bytes.
        let r = server.get_url(&resolved).send();
        r.assert_status(200);
        assert_eq!(sha256_hex(&r.body), built.sha256, "{}", r.describe());
    }
    // PEP 740: the provenance URL is kept (it is the upstream's).
    assert_eq!(
        json_file(page, &m.whl2.filename)["provenance"],
        serde_json::json!(upstream.provenance_url(&m.whl2)),
        "provenance; page {page}"
    );
    assert!(json_file(page, &m.whl1.filename).get("provenance").is_none_or(Value::is_null));
}

#[track_caller]
fn check_html(server: &Server, upstream: &FixtureUpstream, m: &MetaProject, html: &str) {
    let metas = html::tags(html, "meta");
    let meta = |name: &str| -> Vec<String> {
        metas
            .iter()
            .filter(|t| t.attr("name") == Some(name))
            .map(|t| t.attr("content").unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(meta("pypi:repository-version"), ["1.4"], "{html}");
    assert_eq!(meta("pypi:tracks"), [TRACKS], "{html}");
    assert_eq!(meta("pypi:project-status"), ["archived"], "{html}");
    assert_eq!(meta("pypi:project-status-reason"), [STATUS_REASON], "{html}");
    let anchors = html::tags(html, "a");
    assert_eq!(anchors.len(), 3, "{html}");
    for (built, yanked, rp, metadata) in [
        (&m.whl1, Some(YANK_REASON), None, m.whl1.core_metadata_sha256()),
        (&m.whl2, None, Some(RP), m.whl2.core_metadata_sha256()),
        (&m.sdist2, Some(""), Some(RP), None),
    ] {
        let a = anchors
            .iter()
            .find(|a| a.text == built.filename)
            .unwrap_or_else(|| panic!("no anchor for {} in {html}", built.filename));
        let href = a.attr("href").expect("href");
        let (url, fragment) = href.split_once('#').expect("a #sha256= fragment");
        assert_eq!(fragment, format!("sha256={}", built.sha256));
        assert_points_at_larder(server, upstream, "fixture-meta", url);
        assert_eq!(a.attr("data-yanked"), yanked, "data-yanked of {}", built.filename);
        assert_eq!(a.attr("data-requires-python"), rp, "data-requires-python of {}", built.filename);
        let want = metadata.map(|h| format!("sha256={h}"));
        assert_eq!(a.attr("data-core-metadata").map(str::to_owned), want, "data-core-metadata of {}", built.filename);
        assert_eq!(
            a.attr("data-dist-info-metadata").map(str::to_owned),
            want,
            "data-dist-info-metadata of {}",
            built.filename
        );
    }
    let a2 = anchors.iter().find(|a| a.text == m.whl2.filename).unwrap();
    assert_eq!(
        a2.attr("data-provenance").map(str::to_owned),
        Some(upstream.provenance_url(&m.whl2)),
        "data-provenance"
    );
}

#[test]
fn json_upstream_everything_is_passed_through_in_both_formats() {
    let fixtures = temp_dir("pages-json-fx");
    let data = temp_dir("pages-json-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Negotiate);
    let m = meta_project(fixtures.path(), &upstream);
    let server = serve(data.path(), &upstream, &[]);

    let (r, page) = get_json(&server, "fixture-meta");
    assert_eq!(r.header("x-larder-cache"), Some("miss"));
    // The upstream answered JSON (larder asks for it first).
    let seen = upstream.seen();
    assert!(
        seen.iter().any(|s| s.path == "/simple/fixture-meta/" && s.accept.as_deref().is_some_and(|a| a.contains(JSON))),
        "larder did not ask the upstream for JSON: {}",
        upstream.describe_seen()
    );
    check_common_json(&server, &upstream, &m, &page);
    // JSON-only fields: size, upload-time, versions (with a version that has
    // no files), alternate locations.
    assert_eq!(page["versions"], serde_json::json!(["0.9", "1.0", "2.0"]), "versions; page {page}");
    assert_eq!(page["alternate-locations"], serde_json::json!([ALTERNATE]), "page {page}");
    for (built, time) in [
        (&m.whl1, "2023-05-06T07:08:09.123456Z"),
        (&m.whl2, "2024-02-03T04:05:06.654321Z"),
        (&m.sdist2, "2024-02-03T04:05:07.000001Z"),
    ] {
        let f = json_file(&page, &built.filename);
        assert_eq!(f["size"], built.size, "size of {}: {f}", built.filename);
        assert_eq!(f["upload-time"], time, "upload-time of {}: {f}", built.filename);
    }

    let html = get_html(&server, "fixture-meta");
    check_html(&server, &upstream, &m, &html);
    let alternate: Vec<_> = html::tags(&html, "meta")
        .into_iter()
        .filter(|t| t.attr("name") == Some("pypi:alternate-locations"))
        .filter_map(|t| t.attr("content").map(str::to_owned))
        .collect();
    assert_eq!(alternate, [ALTERNATE]);
    // One page fetch served both formats.
    assert_eq!(upstream.count("/simple/fixture-meta/"), 1, "{}", upstream.describe_seen());
}

#[test]
fn html_upstream_is_read_with_relative_links_and_gains_size_but_no_upload_time() {
    let fixtures = temp_dir("pages-html-fx");
    let data = temp_dir("pages-html-data");
    let upstream = FixtureUpstream::start(UpstreamFormat::Html);
    let m = meta_project(fixtures.path(), &upstream);
    let server = serve(data.path(), &upstream, &[]);

    let (_, page) = get_json(&server, "fixture-meta");
    check_common_json(&server, &upstream, &m, &page);
    assert_eq!(page["versions"], serde_json::json!(["1.0", "2.0"]), "page {page}");
    let html = get_html(&server, "fixture-meta");
    check_html(&server, &upstream, &m, &html);

    // check_common_json downloaded every file through larder: now that they
    // are stored, the JSON page gives their size, and still no upload time
    // (the time larder fetched a file is not when it was uploaded; the
    // rendered page cache must notice within a couple of seconds).
    let mut last = Value::Null;
    let complete = eventually(Duration::from_secs(3), || {
        let (_, page) = get_json(&server, "fixture-meta");
        last = page.clone();
        [&m.whl1, &m.whl2, &m.sdist2].iter().all(|b| {
            let f = json_file(&page, &b.filename);
            f["size"] == b.size && f.get("upload-time").is_none()
        })
    });
    assert!(complete, "size not filled in, or an upload time invented, after the downloads: {last}");
    for b in [&m.whl1, &m.whl2, &m.sdist2] {
        assert_eq!(upstream.count(&FixtureUpstream::file_path(b)), 1, "{}", upstream.describe_seen());
    }
}

#[test]
fn an_html_only_upstream_without_extras_still_gets_size_once_stored() {
    // The plainest PEP 503 upstream: no metadata, no meta tags.
    let fixtures = temp_dir("pages-plain-fx");
    let data = temp_dir("pages-plain-data");
    let whl = Wheel::new("fixture-plain", "1.0").build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Html, std::slice::from_ref(&whl));
    let server = serve(data.path(), &upstream, &[]);

    let (_, page) = get_json(&server, "fixture-plain");
    let f = json_file(&page, &whl.filename);
    assert!(f.get("size").is_none_or(Value::is_null), "size invented before download: {f}");
    let url = assert_points_at_larder(&server, &upstream, "fixture-plain", f["url"].as_str().unwrap());
    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert_eq!(sha256_hex(&r.body), whl.sha256);

    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs(3), || {
        let (_, page) = get_json(&server, "fixture-plain");
        let f = json_file(&page, &whl.filename).clone();
        last = page;
        f["size"] == whl.size && f.get("upload-time").is_none()
    });
    assert!(ok, "size not shown, or an upload time invented, after the download: {last}");
}

// ----------------------------------------------------------- PEP 658 --

#[test]
fn metadata_is_extracted_from_the_stored_wheel_when_the_upstream_has_none() {
    let fixtures = temp_dir("pep658-none-fx");
    let data = temp_dir("pep658-none-data");
    let whl = Wheel::new("fixture-nometa", "1.0")
        .requires_dist("fixture-dep>=1")
        .summary("metadata only inside the wheel")
        .build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    upstream.set_serve_metadata(false);
    let server = serve(data.path(), &upstream, &[]);

    let (_, page) = get_json(&server, "fixture-nometa");
    let f = json_file(&page, &whl.filename);
    // Advertised before larder has it (PEP 714 `true`, no hash yet): it is
    // read from the wheel by ranges on demand (see proxy_fidelity.rs).
    assert_eq!(f["core-metadata"], true, "metadata not advertised for a wheel: {f}");
    let url = assert_points_at_larder(&server, &upstream, "fixture-nometa", f["url"].as_str().unwrap());
    let metadata_target = format!("{}.metadata", url.path());

    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert_eq!(sha256_hex(&r.body), whl.sha256);

    let want_hash = whl.core_metadata_sha256().unwrap();
    let mut last = Value::Null;
    let advertised = eventually(Duration::from_secs(3), || {
        let (_, page) = get_json(&server, "fixture-nometa");
        let f = json_file(&page, &whl.filename).clone();
        last = page;
        f["core-metadata"] == serde_json::json!({"sha256": want_hash})
            && f["dist-info-metadata"] == serde_json::json!({"sha256": want_hash})
    });
    assert!(advertised, "core-metadata not advertised after the wheel was stored: {last}");
    let html = get_html(&server, "fixture-nometa");
    let a = html::tags(&html, "a").into_iter().find(|a| a.text == whl.filename).unwrap();
    assert_eq!(a.attr("data-core-metadata"), Some(format!("sha256={want_hash}").as_str()), "{html}");

    let m = server.get(&metadata_target).send();
    m.assert_status(200);
    assert_eq!(Some(&m.body), whl.metadata.as_ref(), "served .metadata is not byte-identical to the wheel's METADATA");
    // Never asked the upstream for a .metadata it does not have.
    assert_eq!(upstream.count(&FixtureUpstream::metadata_path(&whl)), 0, "{}", upstream.describe_seen());
    assert_eq!(upstream.count(&FixtureUpstream::file_path(&whl)), 1, "{}", upstream.describe_seen());
}

#[test]
fn upstream_metadata_is_passed_through_without_fetching_the_wheel() {
    for format in [UpstreamFormat::Json, UpstreamFormat::Html] {
        let fixtures = temp_dir("pep658-up-fx");
        let data = temp_dir("pep658-up-data");
        let whl = Wheel::new("fixture-withmeta", "1.0").requires_dist("fixture-dep>=1").build(fixtures.path());
        let upstream = FixtureUpstream::with_files(format, std::slice::from_ref(&whl));
        upstream.set_serve_metadata(true);
        let server = serve(data.path(), &upstream, &[]);

        let want_hash = whl.core_metadata_sha256().unwrap();
        let (_, page) = get_json(&server, "fixture-withmeta");
        let f = json_file(&page, &whl.filename);
        assert_eq!(f["core-metadata"], serde_json::json!({"sha256": want_hash}), "{format:?}: {f}");
        let url = assert_points_at_larder(&server, &upstream, "fixture-withmeta", f["url"].as_str().unwrap());
        let target = format!("{}.metadata", url.path());

        let first = server.get(&target).send();
        first.assert_status(200);
        assert_eq!(Some(&first.body), whl.metadata.as_ref(), "{format:?}: .metadata differs");
        assert_eq!(first.header("x-larder-cache"), Some("miss"), "{format:?}");
        let second = server.get(&target).send();
        second.assert_status(200);
        assert_eq!(Some(&second.body), whl.metadata.as_ref());
        assert_eq!(second.header("x-larder-cache"), Some("hit"), "{format:?}");

        assert_eq!(
            upstream.count(&FixtureUpstream::metadata_path(&whl)),
            1,
            "{format:?}: {}",
            upstream.describe_seen()
        );
        assert_eq!(
            upstream.count(&FixtureUpstream::file_path(&whl)),
            0,
            "{format:?}: larder fetched the wheel to serve its metadata: {}",
            upstream.describe_seen()
        );
    }
}

// ------------------------------------------------------------ shadowing --

#[test]
fn a_local_project_shadows_the_upstream_one_completely() {
    let local_dir = temp_dir("shadow-local");
    let upstream_dir = temp_dir("shadow-up");
    let data = temp_dir("shadow-data");
    // Local: fixture-internal 1.0. Upstream: a different 1.0 and a higher 9.0
    // (the dependency-confusion attack), plus an unrelated project.
    let local = Wheel::new("fixture-internal", "1.0").summary("the real internal package").build(local_dir.path());
    let evil1 = Wheel::new("fixture-internal", "1.0").summary("not ours").build(upstream_dir.path());
    let evil9 = Wheel::new("fixture-internal", "9.0").build(upstream_dir.path());
    let other = Wheel::new("fixture-public", "1.0").build(upstream_dir.path());
    assert_ne!(local.sha256, evil1.sha256);
    larder().add(data.path(), &[&local.path]).assert_success();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &[evil1.clone(), evil9.clone(), other.clone()]);
    let server = serve(data.path(), &upstream, &["--page-ttl", "1s"]);

    for _ in 0..2 {
        let (r, page) = get_json(&server, "fixture-internal");
        assert_eq!(json_filenames(&page), vec![local.filename.clone()], "page {page}");
        assert_eq!(json_file(&page, &local.filename)["hashes"]["sha256"], local.sha256.as_str());
        assert_eq!(page["versions"], serde_json::json!(["1.0"]), "page {page}");
        // `local` when rendered from the local index, `hit` when the
        // rendered page is reused from memory: never an upstream outcome.
        assert!(matches!(r.header("x-larder-cache"), Some("local" | "hit")), "{}", r.describe());
        let html = get_html(&server, "fixture-internal");
        let anchors = html::tags(&html, "a");
        assert_eq!(anchors.len(), 1, "{html}");
        assert!(anchors[0].attr("href").unwrap().contains(&local.sha256), "{html}");
        // Past the page TTL too.
        std::thread::sleep(Duration::from_millis(1200));
    }
    // The non-normalized spelling is the same project.
    let r = server.get("/simple/Fixture_Internal/").header("Accept", JSON).send();
    assert!(r.status == 301 || r.status == 308, "{}", r.describe());

    // Upstream-only projects still come through.
    let (_, page) = get_json(&server, "fixture-public");
    assert_eq!(json_filenames(&page), vec![other.filename.clone()]);

    // The shadowed upstream files cannot be fetched through larder either.
    for evil in [&evil1, &evil9] {
        let r = server.get(&format!("/files/{}/{}", evil.sha256, evil.filename)).send();
        assert_eq!(r.status, 404, "{}", r.describe());
    }
    let list = server.get("/simple/").header("Accept", JSON).send();
    list.assert_status(200);
    let names: Vec<String> =
        list.json()["projects"].as_array().unwrap().iter().map(|p| normalize(p["name"].as_str().unwrap())).collect();
    assert_eq!(names.iter().filter(|n| *n == "fixture-internal").count(), 1, "{names:?}");

    assert_eq!(
        upstream.count("/simple/fixture-internal/"),
        0,
        "the upstream was asked about a local project: {}",
        upstream.describe_seen()
    );
    assert!(upstream.seen().iter().all(|s| !s.path.contains("fixture_internal")), "{}", upstream.describe_seen());
}

#[test]
fn tampered_upstream_metadata_is_never_served_nor_kept() {
    let fixtures = temp_dir("pep658-bad-fx");
    let data = temp_dir("pep658-bad-data");
    let whl = Wheel::new("fixture-badmeta", "1.0").requires_dist("fixture-dep").build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    upstream.set_serve_metadata(true);
    upstream.set_fault(Some(Fault::CorruptMetadata));
    let server = serve(data.path(), &upstream, &[]);
    let (_, page) = get_json(&server, "fixture-badmeta");
    let f = json_file(&page, &whl.filename);
    let url = assert_points_at_larder(&server, &upstream, "fixture-badmeta", f["url"].as_str().unwrap());
    let target = format!("{}.metadata", url.path());

    for attempt in 1..=2 {
        let r = server.get(&target).send();
        assert!(
            r.status >= 500,
            "attempt {attempt}: metadata that does not match its advertised hash was answered: {}",
            r.describe()
        );
        assert_ne!(Some(&r.body), whl.metadata.as_ref());
    }
    let md = whl.core_metadata_sha256().unwrap();
    assert!(!larder_testkit::proxy::blob_stored(data.path(), &md));
    assert_eq!(upstream.count(&FixtureUpstream::metadata_path(&whl)), 2, "{}", upstream.describe_seen());

    upstream.set_fault(None);
    let r = server.get(&target).send();
    r.assert_status(200);
    assert_eq!(Some(&r.body), whl.metadata.as_ref());
    let bad: Vec<_> = larder_testkit::proxy::blobs(data.path()).into_iter().filter(|(_, ok)| !ok).collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn a_project_added_locally_while_serving_hides_the_proxied_one_at_once() {
    let local_dir = temp_dir("shadow-late-local");
    let upstream_dir = temp_dir("shadow-late-up");
    let data = temp_dir("shadow-late-data");
    let evil = Wheel::new("fixture-late", "9.0").build(upstream_dir.path());
    let local = Wheel::new("fixture-late", "1.0").build(local_dir.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&evil));
    // A long page TTL: the proxied page would be reused for ten minutes.
    let server = serve(data.path(), &upstream, &["--page-ttl", "10m"]);
    let (r, page) = get_json(&server, "fixture-late");
    assert_eq!(r.header("x-larder-cache"), Some("miss"));
    assert_eq!(json_filenames(&page), vec![evil.filename.clone()]);
    let _ = get_html(&server, "fixture-late");

    larder().add(data.path(), &[&local.path]).assert_success();
    let mut last = Value::Null;
    let shadowed = eventually(Duration::from_secs(3), || {
        let (_, page) = get_json(&server, "fixture-late");
        let ok = json_filenames(&page) == vec![local.filename.clone()];
        last = page;
        ok
    });
    assert!(shadowed, "the proxied page still shows after a local add: {last}");
    let html = get_html(&server, "fixture-late");
    assert!(!html.contains(&evil.filename), "{html}");
    assert!(html.contains(&local.filename), "{html}");
}
