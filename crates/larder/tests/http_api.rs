//! The HTTP contract of `larder serve`: the Simple API pages (PEP 503 HTML,
//! PEP 691 JSON, content negotiation), file downloads (ETag, Range,
//! `.metadata`), redirects, the JSON request log, and refusal of path
//! traversal. Every test runs its own `larder serve` on 127.0.0.1 over a
//! data directory filled with `larder add`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

fn standard() -> Env {
    Env::new("http", standard_fixtures)
}

// ---------------------------------------------------------------- basics --

#[test]
fn health_is_ok() {
    let env = standard();
    env.server.get("/health").send().assert_status(200);
    env.server.head("/health").send().assert_status(200);
}

#[test]
fn requests_are_logged_as_json_lines() {
    let env = standard();
    let s = &env.server;
    s.get("/health").send().assert_status(200);
    s.get("/simple/no-such-project/").header("Accept", JSON).send().assert_status(404);
    s.head("/simple/").send().assert_status(200);
    // The path is logged as received, percent-encoding included.
    let encoded = s.get("/simple/fixture%2Dlib/").send();

    let want = [
        RequestLog { method: "GET".into(), path: "/health".into(), status: 200 },
        RequestLog { method: "GET".into(), path: "/simple/no-such-project/".into(), status: 404 },
        RequestLog { method: "HEAD".into(), path: "/simple/".into(), status: 200 },
        RequestLog { method: "GET".into(), path: "/simple/fixture%2Dlib/".into(), status: encoded.status },
    ];
    let log = s.wait_for_log(Duration::from_secs(5), |log| want.iter().all(|w| log.contains(w)));
    for w in &want {
        assert!(log.contains(w), "request {w:?} not in the JSON request log {log:?}\nstderr:\n{}", s.stderr_text());
    }
    // In JSON format every stderr line is one JSON object.
    for line in s.log_lines() {
        match line {
            Ok(v) => assert!(v.is_object(), "log line is JSON but not an object: {v}"),
            Err(l) => panic!("stderr line is not JSON in --log-format json: {l:?}"),
        }
    }
    // And `status` is a number, not a string.
    let raw: Vec<Value> = s.log_lines().into_iter().filter_map(Result::ok).collect();
    let health = raw
        .iter()
        .find(|v| v["fields"]["message"] == "request" && v["fields"]["path"] == "/health")
        .expect("a request line for /health");
    assert!(health["fields"]["status"].is_u64(), "status is not a number: {health}");
}

// ------------------------------------------------------- project list ----

#[test]
fn project_list_json() {
    let env = standard();
    let r = env.server.get("/simple/").header("Accept", JSON).send();
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some(JSON), "{}", r.describe());
    assert_vary_accept(&r);
    last_serial(&r);
    let page = r.json();
    assert_api_version_at_least_1_1(&page);
    let listed: BTreeSet<String> = page["projects"]
        .as_array()
        .unwrap_or_else(|| panic!("no projects[]: {page}"))
        .iter()
        .map(|p| normalize(p["name"].as_str().unwrap_or_else(|| panic!("project name not a string: {p}"))))
        .collect();
    let want: BTreeSet<String> = env.projects().into_iter().collect();
    assert_eq!(listed, want, "projects listed by /simple/");
}

#[test]
fn project_list_html() {
    let env = standard();
    let r = env.server.get("/simple/").header("Accept", "text/html").send();
    r.assert_status(200);
    assert_eq!(r.media_type().as_deref(), Some("text/html"));
    assert_vary_accept(&r);
    last_serial(&r);
    let html = r.text();
    check_repository_version_meta(&html);
    let base = env.server.url("/simple/");
    let linked: BTreeSet<String> = html::tags(&html, "a")
        .iter()
        .map(|a| resolve(&base, a.attr("href").expect("anchor without href")).path().to_owned())
        .collect();
    let want: BTreeSet<String> = env.projects().iter().map(|p| format!("/simple/{p}/")).collect();
    assert_eq!(linked, want, "project links of /simple/ (resolved)");
}

fn check_repository_version_meta(html: &str) {
    let metas = html::tags(html, "meta");
    let meta = metas
        .iter()
        .find(|m| m.attr("name") == Some("pypi:repository-version"))
        .unwrap_or_else(|| panic!("no <meta name=\"pypi:repository-version\"> in {html}"));
    let (major, minor) = parse_api_version(meta.attr("content").expect("meta without content"));
    assert!(major == 1 && minor >= 1, "pypi:repository-version {major}.{minor} is not 1.1 or later");
}

// ------------------------------------------------------------ redirects --

/// GETs `path` and, while the answer is a 301/308, follows its Location
/// (resolved against the request URL); returns the final URL and response.
fn follow(server: &Server, path: &str, max_hops: usize) -> (Url, Response, usize) {
    let mut url = server.url(path);
    let mut r = server.get(path).header("Accept", JSON).send();
    let mut hops = 0;
    while matches!(r.status, 301 | 308) {
        assert!(hops < max_hops, "more than {max_hops} redirects from {path}");
        let location = r.expect_header("location").to_owned();
        url = resolve(&url, &location);
        r = server.get_url(&url).header("Accept", JSON).send();
        hops += 1;
    }
    (url, r, hops)
}

#[test]
fn simple_without_slash_redirects() {
    let env = standard();
    let r = env.server.get("/simple").send();
    assert!(matches!(r.status, 301 | 308), "GET /simple: want 301/308; {}", r.describe());
    let to = resolve(&env.server.url("/simple"), r.expect_header("location"));
    assert_eq!(to, env.server.url("/simple/"));
}

#[test]
fn project_redirects() {
    let env = standard();
    let s = &env.server;
    // Slash-less normalized name: one redirect to the slashed page.
    let r = s.get("/simple/fixture-lib").send();
    assert!(matches!(r.status, 301 | 308), "GET /simple/fixture-lib: want 301/308; {}", r.describe());
    assert_eq!(resolve(&s.url("/simple/fixture-lib"), r.expect_header("location")), s.url("/simple/fixture-lib/"));

    // Non-normalized names: redirected to the normalized page.
    for path in ["/simple/Fixture_Lib/", "/simple/FIXTURE.lib/", "/simple/fixture__lib/"] {
        let r = s.get(path).send();
        assert!(matches!(r.status, 301 | 308), "GET {path}: want 301/308; {}", r.describe());
        assert_eq!(resolve(&s.url(path), r.expect_header("location")), s.url("/simple/fixture-lib/"), "from {path}");
    }
    let r = s.get("/simple/Fixture.Mixed_Case/").send();
    assert!(matches!(r.status, 301 | 308), "{}", r.describe());
    assert_eq!(
        resolve(&s.url("/simple/Fixture.Mixed_Case/"), r.expect_header("location")),
        s.url("/simple/fixture-mixed-case/")
    );

    // Non-normalized and slash-less: a short chain ends on the right page.
    let (url, r, _) = follow(s, "/simple/Fixture_Lib", 3);
    r.assert_status(200);
    assert_eq!(url, s.url("/simple/fixture-lib/"));
    assert_eq!(r.json()["name"], "fixture-lib");
}

#[test]
fn unknown_and_invalid_projects() {
    let env = standard();
    let s = &env.server;
    for accept in [JSON, "text/html"] {
        let r = s.get("/simple/no-such-project/").header("Accept", accept).send();
        r.assert_status(404);
    }
    for path in ["/simple/-bad-/", "/simple/a%20b/", "/simple/bad-/", "/simple/.dots/"] {
        let r = s.get(path).header("Accept", JSON).send();
        // An invalid name is a project that does not exist, as on the
        // public index.
        assert_eq!(r.status, 404, "GET {path}: want 404; {}", r.describe());
    }
}

// ------------------------------------------------- content negotiation --

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Json,
    V1Html,
    TextHtml,
    NotAcceptable,
}

#[track_caller]
fn check_negotiated(r: &Response, want: Want, what: &str) {
    match want {
        Want::NotAcceptable => {
            assert_eq!(r.status, 406, "{what}: want 406; {}", r.describe());
            return;
        }
        _ => assert_eq!(r.status, 200, "{what}: want 200; {}", r.describe()),
    }
    assert_vary_accept(r);
    match want {
        Want::Json => {
            assert_eq!(r.header("content-type"), Some(JSON), "{what}: {}", r.describe());
            let _ = r.json();
        }
        Want::V1Html => {
            assert_eq!(r.media_type().as_deref(), Some(V1_HTML), "{what}: {}", r.describe());
            assert!(r.text().contains("<a"), "{what}: HTML body without links: {}", r.describe());
        }
        Want::TextHtml => {
            assert_eq!(r.media_type().as_deref(), Some("text/html"), "{what}: {}", r.describe());
            assert!(r.text().contains("<a"), "{what}: HTML body without links: {}", r.describe());
        }
        Want::NotAcceptable => unreachable!(),
    }
}

const NEGOTIATION: &[(Option<&str>, Want)] = &[
    // No header and catch-alls get text/html, as on the public index
    // (setuptools' package index, buildout and scripts rely on it).
    (None, Want::TextHtml),
    (Some("*/*"), Want::TextHtml),
    (Some("text/*"), Want::TextHtml),
    (Some("application/vnd.pypi.simple.v1+json"), Want::Json),
    (Some("application/vnd.pypi.simple.v1+html"), Want::V1Html),
    (Some("text/html"), Want::TextHtml),
    (Some("application/vnd.pypi.simple.latest+json"), Want::Json),
    (Some("application/vnd.pypi.simple.latest+html"), Want::V1Html),
    (Some(PIP_ACCEPT), Want::Json),
    (Some(UV_ACCEPT), Want::Json),
    // q-values, not order, decide.
    (Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html;q=0.9"), Want::TextHtml),
    (Some("text/html;q=0.2, application/vnd.pypi.simple.v1+json;q=0.3"), Want::Json),
    // q=0 refuses.
    (Some("application/vnd.pypi.simple.v1+json;q=0, text/html"), Want::TextHtml),
    // Only types this index does not serve: the HTML page with 200, not 406.
    (Some("application/vnd.pypi.simple.v1+json;q=0"), Want::TextHtml),
    (Some("image/png"), Want::TextHtml),
    (Some("application/json"), Want::TextHtml),
    // Ties between named types prefer JSON, then v1+html, then text/html;
    // a named type beats a wildcard (SPECS.md).
    (Some("application/*"), Want::Json),
    (Some("*/*, application/vnd.pypi.simple.v1+json"), Want::Json),
    (Some("text/html;q=0.5, application/vnd.pypi.simple.v1+html;q=0.5"), Want::V1Html),
    // A type refused with q=0 stays refused even when a wildcard would
    // match it (the more specific range decides, RFC 9110 12.5.1).
    (Some("application/vnd.pypi.simple.v1+json;q=0, */*;q=0.5"), Want::TextHtml),
];

fn negotiation_on(path: &str) {
    let env = standard();
    for (accept, want) in NEGOTIATION {
        let mut req = env.server.get(path);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let r = req.send();
        check_negotiated(&r, *want, &format!("GET {path} with Accept {accept:?}"));
    }
}

#[test]
fn negotiation_on_project_page() {
    negotiation_on("/simple/fixture-lib/");
}

#[test]
fn negotiation_on_project_list() {
    negotiation_on("/simple/");
}

#[test]
fn format_query_overrides_accept() {
    let env = standard();
    let s = &env.server;
    for path in ["/simple/", "/simple/fixture-lib/"] {
        // `+` percent-encoded (unambiguous) and literal (as PEP 691 writes it).
        for json in ["application/vnd.pypi.simple.v1%2Bjson", "application/vnd.pypi.simple.v1+json"] {
            let target = format!("{path}?format={json}");
            let r = s.get(&target).header("Accept", "text/html").send();
            check_negotiated(&r, Want::Json, &format!("GET {target} with Accept text/html"));
        }
        let target = format!("{path}?format=text/html");
        let r = s.get(&target).header("Accept", JSON).send();
        check_negotiated(&r, Want::TextHtml, &format!("GET {target} with Accept JSON"));
        let target = format!("{path}?format=application/vnd.pypi.simple.v1%2Bhtml");
        let r = s.get(&target).header("Accept", JSON).send();
        check_negotiated(&r, Want::V1Html, &format!("GET {target} with Accept JSON"));
        // Asking by name for a format this index does not serve is refused.
        let target = format!("{path}?format=application/json");
        let r = s.get(&target).header("Accept", JSON).send();
        check_negotiated(&r, Want::NotAcceptable, &format!("GET {target}"));
    }
}

// ------------------------------------------------------- project page ----

fn is_upload_time(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS.ffffffZ
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn project_page_json() {
    let env = standard();
    let s = &env.server;
    let r = s.get("/simple/fixture-lib/").header("Accept", JSON).send();
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some(JSON));
    let page = r.json();
    assert_api_version_at_least_1_1(&page);
    assert_eq!(page["name"], "fixture-lib");
    // PEP 440 order, not string order.
    assert_eq!(page["versions"], serde_json::json!(["1.0", "1.9", "1.10", "2.0rc1", "2.0"]));

    let mut want: Vec<String> = env.project_files("fixture-lib").iter().map(|f| f.filename.clone()).collect();
    want.sort();
    assert_eq!(json_filenames(&page), want, "files of fixture-lib");

    let page_url = s.url("/simple/fixture-lib/");
    for fixture in env.project_files("fixture-lib") {
        let f = json_file(&page, &fixture.filename);
        let what = &fixture.filename;
        assert_eq!(f["hashes"]["sha256"], fixture.sha256.as_str(), "{what}: hashes.sha256");
        assert_eq!(f["size"].as_u64(), Some(fixture.size), "{what}: size");
        assert_eq!(f["yanked"], false, "{what}: yanked");
        let t = f["upload-time"].as_str().unwrap_or_else(|| panic!("{what}: no upload-time string: {f}"));
        assert!(is_upload_time(t), "{what}: upload-time {t:?} is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
        match fixture.core_metadata_sha256() {
            Some(meta_sha) => {
                let want = serde_json::json!({ "sha256": meta_sha });
                assert_eq!(f["core-metadata"], want, "{what}: core-metadata");
                assert_eq!(f["dist-info-metadata"], want, "{what}: dist-info-metadata");
            }
            None => {
                assert_eq!(f["core-metadata"], false, "{what}: sdist core-metadata");
                assert!(
                    f.get("dist-info-metadata").is_none() || f["dist-info-metadata"] == false,
                    "{what}: sdist dist-info-metadata must be false or absent: {f}"
                );
            }
        }
        // The URL is relative to the page; it downloads this very file.
        let url = resolve(&page_url, f["url"].as_str().unwrap_or_else(|| panic!("{what}: url not a string")));
        let got = s.get_url(&url).send();
        got.assert_status(200);
        assert!(got.body == fixture.bytes(), "{what}: body downloaded from {url} differs from the added file");
    }

    let requires_python = |filename: &str| json_file(&page, filename).get("requires-python").cloned();
    assert_eq!(requires_python("fixture_lib-2.0-py3-none-any.whl"), Some(Value::from(">=3.8,<4")));
    assert_eq!(requires_python("fixture_lib-1.0.tar.gz"), Some(Value::from(">=3.7")), "from the sdist's PKG-INFO");
    let none = requires_python("fixture_lib-1.0-py3-none-any.whl");
    assert!(none.is_none() || none == Some(Value::Null), "no Requires-Python, yet requires-python = {none:?}");

    // The display-named project is listed under its normalized name.
    let mixed = json_page(s, "fixture-mixed-case");
    assert_eq!(mixed["name"], "fixture-mixed-case");
    assert_eq!(json_filenames(&mixed), vec!["fixture_mixed_case-1.0-py3-none-any.whl".to_owned()]);
}

#[test]
fn project_page_html() {
    let env = standard();
    let s = &env.server;
    let r = s.get("/simple/fixture-lib/").header("Accept", "text/html").send();
    r.assert_status(200);
    let html = r.text();
    check_repository_version_meta(&html);
    let anchors = html::tags(&html, "a");
    let fixtures = env.project_files("fixture-lib");
    assert_eq!(anchors.len(), fixtures.len(), "one <a> per file in {html}");
    let page_url = s.url("/simple/fixture-lib/");
    for fixture in fixtures {
        let what = &fixture.filename;
        let a = anchors.iter().find(|a| &a.text == what).unwrap_or_else(|| panic!("no <a> with text {what} in {html}"));
        let href = a.attr("href").unwrap_or_else(|| panic!("{what}: <a> without href"));
        let url = resolve(&page_url, href);
        assert_eq!(url.fragment(), Some(format!("sha256={}", fixture.sha256).as_str()), "{what}: href fragment");
        let mut bare = url.clone();
        bare.set_fragment(None);
        let got = s.get_url(&bare).send();
        got.assert_status(200);
        assert!(got.body == fixture.bytes(), "{what}: download from {bare} differs");

        match fixture.core_metadata_sha256() {
            Some(meta_sha) => {
                let want = format!("sha256={meta_sha}");
                assert_eq!(a.attr("data-core-metadata"), Some(want.as_str()), "{what}: data-core-metadata");
                assert_eq!(a.attr("data-dist-info-metadata"), Some(want.as_str()), "{what}: data-dist-info-metadata");
            }
            None => {
                assert_eq!(a.attr("data-core-metadata"), None, "{what}: sdist has data-core-metadata");
                assert_eq!(a.attr("data-dist-info-metadata"), None, "{what}: sdist has data-dist-info-metadata");
            }
        }
        assert_eq!(a.attr("data-yanked"), None, "{what}: not yanked");
    }
    let wheel20 = anchors.iter().find(|a| a.text == "fixture_lib-2.0-py3-none-any.whl").unwrap();
    assert_eq!(wheel20.raw_attr("data-requires-python"), Some("&gt;=3.8,&lt;4"), "escaped in the document");
    assert_eq!(wheel20.attr("data-requires-python"), Some(">=3.8,<4"));
    let sdist = anchors.iter().find(|a| a.text == "fixture_lib-1.0.tar.gz").unwrap();
    assert_eq!(sdist.attr("data-requires-python"), Some(">=3.7"));
    let wheel10 = anchors.iter().find(|a| a.text == "fixture_lib-1.0-py3-none-any.whl").unwrap();
    assert_eq!(wheel10.attr("data-requires-python"), None);
}

// -------------------------------------------------- caching headers ------

#[test]
fn pages_have_etags_and_honour_if_none_match() {
    let env = standard();
    let s = &env.server;
    for path in ["/simple/", "/simple/fixture-lib/"] {
        let mut etags = Vec::new();
        for accept in [JSON, "text/html", V1_HTML] {
            let r = s.get(path).header("Accept", accept).send();
            r.assert_status(200);
            let etag = r.expect_header("etag").to_owned();
            let again = s.get(path).header("Accept", accept).header("If-None-Match", &etag).send();
            assert_eq!(again.status, 304, "GET {path} ({accept}) with If-None-Match {etag}: {}", again.describe());
            assert!(again.body.is_empty(), "304 with a body");
            let other = s.get(path).header("Accept", accept).header("If-None-Match", "\"not-the-etag\"").send();
            other.assert_status(200);
            etags.push(etag);
        }
        // JSON and HTML are different representations: one ETag must not
        // validate the other (a cache would serve JSON to an HTML client).
        assert_ne!(etags[0], etags[1], "{path}: JSON and text/html share the ETag {}", etags[0]);
    }
}

#[test]
fn pages_carry_last_serial() {
    let env = standard();
    let s = &env.server;
    for path in ["/simple/", "/simple/fixture-lib/", "/simple/fixture-src/"] {
        for accept in [JSON, "text/html"] {
            let r = s.get(path).header("Accept", accept).send();
            r.assert_status(200);
            last_serial(&r);
        }
    }
}

// --------------------------------------------------------------- files ---

fn cache_control_is_immutable(r: &Response) {
    let cc = r.expect_header("cache-control").to_ascii_lowercase();
    let directives: Vec<&str> = cc.split(',').map(str::trim).collect();
    assert!(directives.contains(&"immutable"), "{}: Cache-Control {cc:?} lacks immutable", r.request);
    let max_age: u64 = directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("{}: Cache-Control {cc:?} lacks max-age", r.request))
        .parse()
        .unwrap_or_else(|_| panic!("{}: bad max-age in {cc:?}", r.request));
    assert!(max_age >= 86_400, "{}: max-age {max_age} is not long (under a day)", r.request);
}

#[test]
fn file_download_headers() {
    let env = standard();
    let s = &env.server;
    for filename in ["fixture_lib-2.0-py3-none-any.whl", "fixture_lib-1.0.tar.gz"] {
        let fixture = env.file(filename);
        let url = file_url(s, "fixture-lib", filename);
        // Ask for compression: files must still come as is (SPECS.md: never
        // compress distribution files; uv needs Content-Length).
        let get = s.get_url(&url).header("Accept-Encoding", "gzip, deflate, br, zstd").send();
        get.assert_status(200);
        assert!(get.body == fixture.bytes(), "{filename}: body differs from the added file");
        assert_eq!(get.header("content-length"), Some(fixture.size.to_string().as_str()), "{filename}: Content-Length");
        assert_eq!(get.header("content-encoding"), None, "{filename}: distribution files must not be compressed");
        assert_eq!(get.header("accept-ranges"), Some("bytes"), "{filename}: Accept-Ranges");
        let etag = get.expect_header("etag").to_owned();
        cache_control_is_immutable(&get);

        let head = s.request_url("HEAD", &url).send();
        head.assert_status(200);
        assert!(head.body.is_empty(), "{filename}: HEAD returned a body");
        assert_eq!(
            head.header("content-length"),
            Some(fixture.size.to_string().as_str()),
            "{filename}: HEAD Content-Length"
        );
        assert_eq!(head.header("accept-ranges"), Some("bytes"), "{filename}: HEAD Accept-Ranges");
        assert_eq!(head.header("etag"), Some(etag.as_str()), "{filename}: HEAD ETag");
        cache_control_is_immutable(&head);
    }
}

#[test]
fn file_ranges() {
    let env = standard();
    let s = &env.server;
    let filename = "fixture_app-1.0-py3-none-any.whl";
    let fixture = env.file(filename);
    let bytes = fixture.bytes();
    let size = fixture.size;
    assert!(size > 40, "fixture too small for range tests");
    let url = file_url(s, "fixture-app", filename);

    let r = s.get_url(&url).header("Range", "bytes=0-9").send();
    r.assert_status(206);
    assert_eq!(r.header("content-range"), Some(format!("bytes 0-9/{size}").as_str()));
    assert_eq!(r.body, &bytes[..10]);
    assert_eq!(r.header("content-length"), Some("10"));

    let r = s.get_url(&url).header("Range", "bytes=10-19").send();
    r.assert_status(206);
    assert_eq!(r.header("content-range"), Some(format!("bytes 10-19/{size}").as_str()));
    assert_eq!(r.body, &bytes[10..20]);

    // Suffix range: the last 5 bytes (how uv finds a zip's central directory).
    let r = s.get_url(&url).header("Range", "bytes=-5").send();
    r.assert_status(206);
    assert_eq!(r.header("content-range"), Some(format!("bytes {}-{}/{size}", size - 5, size - 1).as_str()));
    assert_eq!(r.body, &bytes[bytes.len() - 5..]);

    // Open-ended range.
    let r = s.get_url(&url).header("Range", format!("bytes={}-", size - 7).as_str()).send();
    r.assert_status(206);
    assert_eq!(r.body, &bytes[bytes.len() - 7..]);

    // Unsatisfiable: starts at or past the end, or an empty suffix.
    for range in [format!("bytes={size}-"), format!("bytes={}-{}", size + 10, size + 20), "bytes=-0".to_owned()] {
        let r = s.get_url(&url).header("Range", &range).send();
        assert_eq!(r.status, 416, "Range {range} on a {size}-byte file: {}", r.describe());
    }
}

#[test]
fn wheel_metadata_files() {
    let env = standard();
    let s = &env.server;
    for fixture in env.files.iter().filter(|f| f.is_wheel()) {
        let what = &fixture.filename;
        let page = json_page(s, &fixture.project);
        let advertised = json_file(&page, what)["core-metadata"]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no core-metadata sha256"))
            .to_owned();
        let url = file_url(s, &fixture.project, what);
        let meta_url = Url::parse(&format!("{url}.metadata")).unwrap();
        let r = s.get_url(&meta_url).send();
        r.assert_status(200);
        let want = fixture.metadata.as_deref().unwrap();
        assert!(
            r.body == want,
            "{what}.metadata is not byte-identical to the wheel's METADATA:\n--- served ---\n{}\n--- METADATA ---\n{}",
            r.text(),
            String::from_utf8_lossy(want)
        );
        assert_eq!(sha256_hex(&r.body), advertised, "{what}: .metadata hash differs from the advertised one");
    }
    // An sdist has no .metadata.
    let url = file_url(s, "fixture-src", "fixture_src-1.0.tar.gz");
    let meta_url = Url::parse(&format!("{url}.metadata")).unwrap();
    let r = s.get_url(&meta_url).send();
    r.assert_status(404);
}

// ------------------------------------------------------------ traversal --

/// Sends `GET target` as raw bytes (nothing normalizes the path).
fn raw_get(server: &Server, target: &str) -> Response {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr());
    server.raw(request.as_bytes())
}

#[test]
fn path_traversal_and_bad_file_urls_are_refused() {
    let env = standard();
    let s = &env.server;
    let wheel = env.file("fixture_app-1.0-py3-none-any.whl");
    let other = env.file("fixture_lib-1.0-py3-none-any.whl");
    let url = file_url(s, "fixture-app", &wheel.filename);
    let path = url.path().to_owned();

    // Sanity: the real URL works over the raw client.
    raw_get(s, &path).assert_status(200);

    let dir = path.strip_suffix(&wheel.filename).expect("file URL ends with the filename").to_owned();
    let mut targets = vec![format!("{dir}..%2F..%2Fetc%2Fpasswd"), format!("{dir}..%2F{}", other.filename)];
    if path.contains(&wheel.sha256) {
        // The URL names the blob by its sha256: another file's name under
        // this sha256 must not be served.
        targets.push(format!("{dir}{}", other.filename));
        // The sha256 segment replaced by non-hex text, by an unknown hash,
        // and by a truncated hash.
        let not_hex = "z".repeat(64);
        targets.push(path.replace(&wheel.sha256, &not_hex));
        targets.push(path.replace(&wheel.sha256, &"0".repeat(64)));
        targets.push(path.replace(&wheel.sha256, &wheel.sha256[..32]));
    }
    targets.extend([
        "/files/../../etc/passwd".to_owned(),
        "/files/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/files/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd".to_owned(),
        format!("/files/{}/..%2F..%2Fetc%2Fpasswd", wheel.sha256),
        format!("/files/{}/../../../../etc/passwd", wheel.sha256),
        format!("/files/{}/{}", "z".repeat(64), wheel.filename),
        format!("/files/{}/{}", wheel.sha256, other.filename),
        "/simple/..%2F..%2F/".to_owned(),
        "/simple/../../etc/passwd".to_owned(),
        "/simple/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/files/..%5C..%5Cetc%5Cpasswd".to_owned(),
        "/files/%00".to_owned(),
    ]);
    for target in &targets {
        let r = raw_get(s, target);
        assert!((400..500).contains(&r.status), "GET {target}: want 4xx, got {}", r.describe());
        let text = r.text();
        assert!(!text.contains("root:"), "GET {target} leaked a file outside the store: {}", r.describe());
        assert!(r.body != wheel.bytes() && r.body != other.bytes(), "GET {target} served a distribution");
    }
    // The server is still healthy afterwards.
    s.get("/health").send().assert_status(200);
}
