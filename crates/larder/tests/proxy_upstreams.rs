//! The caching proxy and its upstreams: fallback to the next upstream when
//! one refuses connections, hangs or answers 500 (with the retry count
//! honoured exactly), the negative cache for unknown projects, page
//! revalidation with `If-None-Match`, and `--offline`.
//!
//! Every test starts its own fixture upstreams (in-process, 127.0.0.1) and
//! its own `larder serve`.

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

fn serve(data_dir: &Path, upstreams: &[&FixtureUpstream], extra: &[&str]) -> Server {
    let urls: Vec<String> = upstreams.iter().map(|u| u.simple_url()).collect();
    let mut args: Vec<&str> = Vec::new();
    for url in &urls {
        args.push("--upstream");
        args.push(url);
    }
    args.extend_from_slice(extra);
    larder().serve_with(data_dir, &args)
}

/// fixture-lib 1.0 and 2.0 wheels, fixture-app 1.0 wheel (needs lib).
fn small_tree(dir: &Path) -> Vec<Built> {
    vec![
        Wheel::new("fixture-lib", "1.0").build(dir),
        Wheel::new("fixture-lib", "2.0").build(dir),
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib>=1.0").build(dir),
    ]
}

fn get_page(server: &Server, project: &str) -> Response {
    server.get(&format!("/simple/{project}/")).header("Accept", JSON).send()
}

/// GETs a project page through larder and checks it lists exactly the
/// fixtures of that project; returns the response.
#[track_caller]
fn assert_page_lists(server: &Server, project: &str, files: &[Built]) -> Response {
    let r = get_page(server, project);
    r.assert_status(200);
    let page = r.json();
    let mut want: Vec<String> = files.iter().filter(|f| f.project == project).map(|f| f.filename.clone()).collect();
    want.sort();
    assert_eq!(json_filenames(&page), want, "page {page}");
    r
}

/// Downloads `built` through larder (URL from its JSON page) and checks
/// the bytes.
#[track_caller]
fn assert_download(server: &Server, built: &Built) -> Response {
    let url = file_url(server, &built.project, &built.filename);
    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert_eq!(sha256_hex(&r.body), built.sha256, "wrong bytes for {}", built.filename);
    r
}

fn upstream_requests(server: &Server, upstream: &FixtureUpstream) -> f64 {
    let text = server.metrics();
    metric(&text, "larder_upstream_requests_total", &[("upstream", &upstream.simple_url())])
}

// -------------------------------------------------------------- fallback --

/// The first upstream fails with `fault`, the second answers. Returns the
/// two upstreams and larder for further checks.
struct Fallback {
    server: Server,
    first: FixtureUpstream,
    second: FixtureUpstream,
    files: Vec<Built>,
    _dirs: (TempDir, TempDir),
}

fn fallback(fault: Fault, extra: &[&str]) -> Fallback {
    let fixtures = temp_dir("fallback-fx");
    let data = temp_dir("fallback-data");
    let files = small_tree(fixtures.path());
    let first = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let second = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    first.set_fault(Some(fault));
    let server = serve(data.path(), &[&first, &second], extra);
    Fallback { server, first, second, files, _dirs: (fixtures, data) }
}

impl Fallback {
    /// Both pages and one file through larder; each page request must have
    /// reached the second upstream exactly once.
    fn fetch_everything(&self) {
        for project in ["fixture-lib", "fixture-app"] {
            let r = assert_page_lists(&self.server, project, &self.files);
            assert_eq!(r.header("x-larder-cache"), Some("miss"));
            assert_eq!(
                self.second.count(&FixtureUpstream::page_path(project)),
                1,
                "second upstream: {}",
                self.second.describe_seen()
            );
        }
        let lib2 = self.files.iter().find(|f| f.filename.starts_with("fixture_lib-2.0")).unwrap();
        assert_download(&self.server, lib2);
        assert_eq!(self.second.count(&FixtureUpstream::file_path(lib2)), 1);
    }
}

#[test]
fn fallback_when_the_first_upstream_refuses_connections() {
    let t = fallback(Fault::Refuse, &["--upstream-retries", "0", "--upstream-timeout", "2s"]);
    let started = Instant::now();
    t.fetch_everything();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused connection should move on at once; took {:?}",
        started.elapsed()
    );
    assert_eq!(t.first.total(), 0, "the refusing upstream accepted something");
    // One attempt per page on the first upstream, none for the file (its
    // URL is the second upstream's).
    assert_eq!(upstream_requests(&t.server, &t.first), 2.0);
    assert_eq!(upstream_requests(&t.server, &t.second), 3.0);

    // A real install through the fallback works too.
    let clients = Clients::new();
    let target = clients.target_venv("target");
    run_ok(clients.pip().arg("--python").arg(&target).args([
        "install",
        "--index-url",
        t.server.url("/simple/").as_str(),
        "fixture-app",
    ]));
    let out = run_ok(
        clients
            .command(&target)
            .args(["-c", "import importlib.metadata as m; print(m.version('fixture-app'), m.version('fixture-lib'))"]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.0 2.0");
    assert_eq!(t.first.total(), 0);
}

#[test]
fn fallback_when_the_first_upstream_hangs_past_the_timeout() {
    let t = fallback(Fault::Hang, &["--upstream-retries", "0", "--upstream-timeout", "1s"]);
    let started = Instant::now();
    t.fetch_everything();
    // The hang lasts 60 s: finishing well before shows the timeout works.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}: the 1 s upstream timeout was not applied",
        started.elapsed()
    );
    for project in ["fixture-lib", "fixture-app"] {
        assert_eq!(
            t.first.count(&FixtureUpstream::page_path(project)),
            1,
            "with retries 0 the hanging upstream gets one request per page: {}",
            t.first.describe_seen()
        );
    }
    assert_eq!(t.first.total(), 2, "{}", t.first.describe_seen());
}

#[test]
fn fallback_when_the_first_upstream_answers_500_with_retries_0() {
    let t = fallback(Fault::Status(500), &["--upstream-retries", "0"]);
    t.fetch_everything();
    for project in ["fixture-lib", "fixture-app"] {
        assert_eq!(
            t.first.count(&FixtureUpstream::page_path(project)),
            1,
            "retries 0: one request per page: {}",
            t.first.describe_seen()
        );
    }
    assert_eq!(t.first.total(), 2, "{}", t.first.describe_seen());
}

#[test]
fn fallback_when_the_first_upstream_answers_500_with_retries_2() {
    let t = fallback(Fault::Status(500), &["--upstream-retries", "2"]);
    t.fetch_everything();
    for project in ["fixture-lib", "fixture-app"] {
        assert_eq!(
            t.first.count(&FixtureUpstream::page_path(project)),
            3,
            "retries 2: three requests per page: {}",
            t.first.describe_seen()
        );
    }
    assert_eq!(t.first.total(), 6, "{}", t.first.describe_seen());
    assert_eq!(upstream_requests(&t.server, &t.first), 6.0);
}

#[test]
fn every_upstream_failing_with_nothing_stored_is_a_502_with_one_line() {
    let fixtures = temp_dir("allfail-fx");
    let data = temp_dir("allfail-data");
    let files = small_tree(fixtures.path());
    let first = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let second = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    first.set_fault(Some(Fault::Status(503)));
    second.set_fault(Some(Fault::Refuse));
    let server = serve(data.path(), &[&first, &second], &["--upstream-retries", "0"]);
    let r = get_page(&server, "fixture-lib");
    assert_eq!(r.status, 502, "{}", r.describe());
    let text = r.text();
    assert!(!text.trim().is_empty() && !text.trim().contains('\n'), "the reason should be one line: {text:?}");
    // Nothing was cached over: once an upstream answers, the page is there.
    second.set_fault(None);
    let r = get_page(&server, "fixture-lib");
    r.assert_status(200);
    assert_eq!(json_filenames(&r.json()).len(), 2);
}

// -------------------------------------------------------- negative cache --

#[test]
fn a_storm_for_a_missing_project_costs_one_upstream_request() {
    let fixtures = temp_dir("neg-fx");
    let data = temp_dir("neg-data");
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &small_tree(fixtures.path()));
    let server = serve(data.path(), &[&upstream], &["--negative-ttl", "3s"]);
    let missing = "/simple/fixture-no-such-project/";

    let storm = |n: usize| {
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let addr = server.addr();
                std::thread::spawn(move || {
                    barrier.wait();
                    Request::new(addr, "GET", missing).header("Accept", JSON).send()
                })
            })
            .collect();
        let started = Instant::now();
        let responses: Vec<Response> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (responses, started.elapsed())
    };

    let (responses, took) = storm(30);
    for r in &responses {
        assert_eq!(r.status, 404, "{}", r.describe());
    }
    assert!(took < Duration::from_secs(3), "the storm outlasted the negative TTL ({took:?}); test is void");
    assert_eq!(upstream.count(missing), 1, "{}", upstream.describe_seen());
    // Still within the TTL: nothing more goes upstream.
    let (responses, _) = storm(5);
    assert!(responses.iter().all(|r| r.status == 404));
    assert_eq!(upstream.count(missing), 1, "{}", upstream.describe_seen());
    let metrics = server.metrics();
    assert_eq!(
        metric(&metrics, "larder_requests_total", &[("kind", "page"), ("outcome", "not_found")]),
        35.0,
        "{metrics}"
    );

    // After the TTL the upstream is asked again, once.
    std::thread::sleep(Duration::from_millis(3300));
    let r = get_page(&server, "fixture-no-such-project");
    assert_eq!(r.status, 404);
    assert_eq!(upstream.count(missing), 2, "{}", upstream.describe_seen());

    // And a project that appears upstream shows up after the TTL.
    let added = Wheel::new("fixture-no-such-project", "1.0").build(fixtures.path());
    upstream.add(&added);
    std::thread::sleep(Duration::from_millis(3300));
    let r = get_page(&server, "fixture-no-such-project");
    r.assert_status(200);
    assert_eq!(json_filenames(&r.json()), vec![added.filename.clone()]);
}

// ----------------------------------------------------------- revalidation --

#[test]
fn pages_are_revalidated_with_if_none_match_after_the_ttl() {
    let fixtures = temp_dir("reval-fx");
    let data = temp_dir("reval-data");
    let files = small_tree(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let server = serve(data.path(), &[&upstream], &["--page-ttl", "1s"]);
    let page = FixtureUpstream::page_path("fixture-lib");

    let r = assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(r.header("x-larder-cache"), Some("miss"));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].if_none_match, None, "first request cannot be conditional");
    // Within the TTL: served without asking.
    let r = assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(r.header("x-larder-cache"), Some("hit"));
    assert_eq!(upstream.count(&page), 1);

    std::thread::sleep(Duration::from_millis(1300));
    let r = assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(r.header("x-larder-cache"), Some("revalidated"), "{}", r.describe());
    let seen = upstream.seen();
    assert_eq!(upstream.count(&page), 2, "{}", upstream.describe_seen());
    let second = seen.iter().filter(|s| s.path == page).nth(1).unwrap();
    assert!(second.if_none_match.is_some(), "the revalidation was not conditional: {}", upstream.describe_seen());
    assert_eq!(second.status, Some(304), "{}", upstream.describe_seen());
    let log = larder_testkit::wait_for_cache_log(&server, Duration::from_secs(5), |log| {
        log.iter().any(|l| l.path == "/simple/fixture-lib/" && l.cache == "revalidated")
    });
    assert!(log.iter().any(|l| l.path == "/simple/fixture-lib/" && l.cache == "revalidated"), "{log:#?}");
    let metrics = server.metrics();
    assert!(
        metric(&metrics, "larder_requests_total", &[("kind", "page"), ("outcome", "revalidated")]) >= 1.0,
        "{metrics}"
    );

    // A new release upstream shows up after the TTL, and is downloadable.
    let new = Wheel::new("fixture-lib", "2.1").build(fixtures.path());
    upstream.add(&new);
    let r = assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(r.header("x-larder-cache"), Some("hit"), "within the TTL the old page stands");
    std::thread::sleep(Duration::from_millis(1300));
    let r = get_page(&server, "fixture-lib");
    r.assert_status(200);
    assert_eq!(r.header("x-larder-cache"), Some("miss"), "{}", r.describe());
    let names = json_filenames(&r.json());
    assert!(names.contains(&new.filename), "{names:?}");
    assert_eq!(names.len(), 3);
    // The HTML rendering agrees (no stale rendered copy).
    let html = server.get("/simple/fixture-lib/").header("Accept", "text/html").send();
    assert!(html.text().contains(&new.filename), "{}", html.text());
    assert_download(&server, &new);
}

// ---------------------------------------------------------------- offline --

#[test]
fn offline_serves_what_is_stored_and_never_contacts_the_upstream() {
    let fixtures = temp_dir("offline-fx");
    let data = temp_dir("offline-data");
    let files = small_tree(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_serve_metadata(true);
    let lib1 = files[0].clone();
    let lib2 = files[1].clone();
    let lib1_target;
    {
        // Online first: store the fixture-lib page, lib 2.0 and its metadata
        // (lib 1.0 is listed but never downloaded).
        let online = serve(data.path(), &[&upstream], &[]);
        assert_page_lists(&online, "fixture-lib", &files);
        assert_download(&online, &lib2);
        // It is stored right after it was served; the server is killed below.
        assert!(larder_testkit::proxy::eventually(Duration::from_secs(5), || larder_testkit::proxy::blob_stored(
            data.path(),
            &lib2.sha256
        )));
        let url = file_url(&online, "fixture-lib", &lib2.filename);
        online.get(&format!("{}.metadata", url.path())).send().assert_status(200);
        lib1_target = target_of(&file_url(&online, "fixture-lib", &lib1.filename));
    }
    upstream.reset_seen();

    let server = serve(data.path(), &[&upstream], &["--offline", "--page-ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1100));
    // Offline, a page lists what can be served: the stored files.
    let r = get_page(&server, "fixture-lib");
    r.assert_status(200);
    assert_eq!(json_filenames(&r.json()), vec![lib2.filename.clone()], "{}", r.describe());
    assert_eq!(r.header("x-larder-cache"), Some("offline"), "{}", r.describe());
    let html = server.get("/simple/fixture-lib/").header("Accept", "text/html").send();
    html.assert_status(200);
    assert!(html.text().contains(&lib2.filename), "{}", html.text());
    let r = assert_download(&server, &lib2);
    assert_eq!(r.header("x-larder-cache"), Some("hit"));
    let url = file_url(&server, "fixture-lib", &lib2.filename);
    let m = server.get(&format!("{}.metadata", url.path())).send();
    m.assert_status(200);
    assert_eq!(Some(&m.body), lib2.metadata.as_ref());

    // Listed online but never stored: a 404, not an attempt upstream.
    let r = server.get(&lib1_target).send();
    assert_eq!(r.status, 404, "{}", r.describe());
    let r = server.get(&format!("{lib1_target}.metadata")).send();
    assert_eq!(r.status, 404, "{}", r.describe());
    // Never fetched: 404.
    let r = get_page(&server, "fixture-app");
    assert_eq!(r.status, 404, "{}", r.describe());
    let r = get_page(&server, "fixture-unknown");
    assert_eq!(r.status, 404, "{}", r.describe());

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(upstream.total(), 0, "offline larder contacted the upstream: {}", upstream.describe_seen());
    assert_eq!(upstream_requests(&server, &upstream), 0.0);
    let log = larder_testkit::settled_cache_log(&server);
    assert!(log.iter().all(|l| l.status < 500), "{log:#?}");
}

// ------------------------------------------------------- stale-if-error --

#[test]
fn every_kind_of_upstream_failure_serves_the_stored_page_stale() {
    let fixtures = temp_dir("stale-fx");
    let data = temp_dir("stale-data");
    let mut files = small_tree(fixtures.path());
    files.push(Wheel::new("fixture-other", "1.0").build(fixtures.path()));
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let server =
        serve(data.path(), &[&upstream], &["--page-ttl", "1s", "--upstream-retries", "0", "--upstream-timeout", "1s"]);
    for project in ["fixture-lib", "fixture-app", "fixture-other"] {
        assert_page_lists(&server, project, &files);
    }
    let lib2 = files[1].clone();
    assert_download(&server, &lib2);

    // One project per failure kind (after a failure, larder backs off from
    // that project for a while, so each kind needs its own).
    for (fault, project) in
        [(Fault::Status(500), "fixture-lib"), (Fault::Hang, "fixture-app"), (Fault::Refuse, "fixture-other")]
    {
        upstream.set_fault(Some(fault));
        std::thread::sleep(Duration::from_millis(1200));
        let before = upstream.count(&FixtureUpstream::page_path(project));
        let r = assert_page_lists(&server, project, &files);
        assert_eq!(r.header("x-larder-cache"), Some("stale"), "{fault:?}: {}", r.describe());
        if fault != Fault::Refuse {
            assert_eq!(
                upstream.count(&FixtureUpstream::page_path(project)),
                before + 1,
                "{fault:?}: the upstream was not asked: {}",
                upstream.describe_seen()
            );
        }
        let html = server.get(&format!("/simple/{project}/")).header("Accept", "text/html").send();
        html.assert_status(200);
        // A stored file of a stale page is still served.
        let r = assert_download(&server, &lib2);
        assert_eq!(r.header("x-larder-cache"), Some("hit"));
        upstream.set_fault(None);
    }
    let log = larder_testkit::settled_cache_log(&server);
    for project in ["fixture-lib", "fixture-app", "fixture-other"] {
        assert!(log.iter().any(|l| l.path == format!("/simple/{project}/") && l.cache == "stale"), "{log:#?}");
    }
    assert!(log.iter().all(|l| l.status < 500), "{log:#?}");
    let metrics = server.metrics();
    assert!(metric(&metrics, "larder_requests_total", &[("kind", "page"), ("outcome", "stale")]) >= 3.0, "{metrics}");
}

// ------------------------------------------------- config and credentials --

#[test]
fn per_upstream_settings_come_from_the_config_file_and_flags_win() {
    let fixtures = temp_dir("config-fx");
    let files = small_tree(fixtures.path());
    let first = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let second = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    first.set_fault(Some(Fault::Status(500)));
    let config = fixtures.path().join("larder.toml");
    std::fs::write(
        &config,
        format!(
            "page-ttl = \"10m\"\n\n[[upstream]]\nurl = \"{}\"\nretries = 1\ntimeout = \"2s\"\n\n[[upstream]]\nurl = \"{}\"\n",
            first.simple_url(),
            second.simple_url()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let data = temp_dir("config-data");
    let server = larder().serve_with(data.path(), &["--config", config]);
    assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(first.count("/simple/fixture-lib/"), 2, "retries = 1 from the config file: {}", first.describe_seen());
    drop(server);

    let data = temp_dir("config-data2");
    let server = larder().serve_with(data.path(), &["--config", config, "--upstream-retries", "0"]);
    assert_page_lists(&server, "fixture-app", &files);
    assert_eq!(
        first.count("/simple/fixture-app/"),
        1,
        "--upstream-retries 0 wins over the file: {}",
        first.describe_seen()
    );
}

#[test]
fn credentials_go_to_their_upstream_only_and_never_leak() {
    let fixtures = temp_dir("cred-fx");
    let data = temp_dir("cred-data");
    let private = Wheel::new("fixture-private", "1.0").build(fixtures.path());
    let public = Wheel::new("fixture-public", "1.0").build(fixtures.path());
    let first = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&private));
    let second = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&public));
    let secret = "s3cret-t0ken";
    let with_credentials = format!("http://ci:{secret}@{}/simple/", first.addr());
    let second_url = second.simple_url();
    let server = larder().serve_with(
        data.path(),
        &["--upstream", &with_credentials, "--upstream", &second_url, "--upstream-retries", "0"],
    );
    let private_page = assert_page_lists(&server, "fixture-private", std::slice::from_ref(&private));
    assert_download(&server, &private);
    let public_page = assert_page_lists(&server, "fixture-public", std::slice::from_ref(&public));
    assert_download(&server, &public);

    let expected = larder_testkit::proxy::basic_auth("ci", secret);
    let seen = first.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some(expected.as_str()), "{} {}", s.method, s.path);
    }
    assert!(seen.iter().any(|s| s.path == FixtureUpstream::file_path(&private)), "{}", first.describe_seen());
    for s in second.seen() {
        assert_eq!(s.authorization, None, "credentials sent to the other upstream: {} {}", s.method, s.path);
    }
    let metrics = server.metrics();
    for (what, text) in [
        ("a page", private_page.text()),
        ("a page", public_page.text()),
        ("/metrics", metrics),
        ("the log", server.stderr_text()),
    ] {
        assert!(!text.contains(secret), "the upstream password appears in {what}: {text}");
    }
}

#[test]
fn credentials_are_not_sent_where_a_file_download_redirects() {
    let fixtures = temp_dir("redir-fx");
    let data = temp_dir("redir-data");
    let whl = Wheel::new("fixture-redirected", "1.0").build(fixtures.path());
    let index = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    index.set_serve_metadata(true);
    // The index keeps its files on another host (another fixture).
    let file_host = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    file_host.set_serve_metadata(true);
    index.redirect_files_to(Some(file_host.url("")));
    let secret = "redirect-s3cret";
    let url = format!("http://ci:{secret}@{}/simple/", index.addr());
    let server = larder().serve_with(data.path(), &["--upstream", &url]);

    assert_page_lists(&server, "fixture-redirected", std::slice::from_ref(&whl));
    let file = file_url(&server, "fixture-redirected", &whl.filename);
    let m = server.get(&format!("{}.metadata", file.path())).send();
    m.assert_status(200);
    assert_eq!(Some(&m.body), whl.metadata.as_ref());
    assert_download(&server, &whl);

    let auth = larder_testkit::proxy::basic_auth("ci", secret);
    assert!(
        index.seen().iter().all(|s| s.authorization.as_deref() == Some(auth.as_str())),
        "{}",
        index.describe_seen()
    );
    assert!(index.seen().iter().any(|s| s.status == Some(302)), "{}", index.describe_seen());
    let fetched = file_host.seen();
    assert!(
        fetched.iter().any(|s| s.path == FixtureUpstream::file_path(&whl)),
        "the redirect was not followed: {}",
        file_host.describe_seen()
    );
    for s in fetched {
        assert_eq!(
            s.authorization, None,
            "the index credentials were sent to the host a download redirected to: {} {}",
            s.method, s.path
        );
    }
}

// ------------------------------------------ no upstream: pip's index, or none --

#[test]
fn without_an_upstream_the_index_pip_is_configured_with_is_used() {
    let fixtures = temp_dir("pipcfg-fx");
    let files = small_tree(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let url = upstream.simple_url();

    // PIP_INDEX_URL.
    let data = temp_dir("pipcfg-env");
    let server = larder().serve_with_env(data.path(), &[], &[("PIP_INDEX_URL", &url)]);
    assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(upstream.count("/simple/fixture-lib/"), 1, "{}", upstream.describe_seen());
    drop(server);

    // pip's configuration file.
    let conf = fixtures.path().join("pip.conf");
    std::fs::write(&conf, format!("[global]\nindex-url = {url}\n")).unwrap();
    let data = temp_dir("pipcfg-file");
    let server = larder().serve_with_env(data.path(), &[], &[("PIP_CONFIG_FILE", conf.to_str().unwrap())]);
    assert_page_lists(&server, "fixture-app", &files);
    assert_eq!(upstream.count("/simple/fixture-app/"), 1, "{}", upstream.describe_seen());

    // A flag wins over pip's configuration.
    let other = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let data = temp_dir("pipcfg-flag");
    let other_url = other.simple_url();
    let server = larder().serve_with_env(data.path(), &["--upstream", &other_url], &[("PIP_INDEX_URL", &url)]);
    assert_page_lists(&server, "fixture-lib", &files);
    assert_eq!(other.count("/simple/fixture-lib/"), 1);
    assert_eq!(upstream.count("/simple/fixture-lib/"), 1, "{}", upstream.describe_seen());
}

#[test]
fn with_no_upstream_anywhere_only_local_packages_are_served_and_it_says_so() {
    let fixtures = temp_dir("noup-fx");
    let data = temp_dir("noup-data");
    let local = Wheel::new("fixture-local", "1.0").build(fixtures.path());
    larder().add(data.path(), &[&local.path]).assert_success();
    let server = larder().serve(data.path());
    assert_page_lists(&server, "fixture-local", std::slice::from_ref(&local));
    let r = get_page(&server, "fixture-lib");
    assert_eq!(r.status, 404, "{}", r.describe());
    std::thread::sleep(Duration::from_millis(200));
    let stderr = server.stderr_text().to_ascii_lowercase();
    assert!(
        stderr.contains("no upstream") && stderr.contains("local"),
        "start-up does not say it serves local packages only:\n{stderr}"
    );
}

#[test]
fn with_no_upstream_anywhere_pips_default_index_is_used_and_logged() {
    let fixtures = temp_dir("pip-default-fx");
    let data = temp_dir("pip-default-data");
    let files = small_tree(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    // A stand-in Python whose pip names the fixture as its default index.
    let python = fixtures.path().join("python3");
    std::fs::write(&python, format!("#!/bin/sh\necho '{}'\n", upstream.simple_url())).unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = larder().serve_with_env(data.path(), &[], &[("LARDER_PIP_PYTHON", python.to_str().unwrap())]);
    assert_page_lists(&server, "fixture-lib", &files);
    let log = server.stderr_text();
    assert!(log.contains("pip's default index") && log.contains(&upstream.simple_url()), "{log}");
}
