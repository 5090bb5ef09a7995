//! The fault-injecting upstream against pages, files and metadata: for
//! every way an upstream can fail (refused, reset, hang before headers,
//! trickle, truncated (files only, and every answer), wrong length, wrong
//! hash, 5xx, an HTML error page with 200, a redirect to another scheme),
//! larder answers in bounded time,
//! falls back to the next upstream or the stored copy for pages, and never
//! serves or stores a wrong file or metadata file.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `--upstream-timeout` of these tests.
const TIMEOUT: &str = "2s";
/// How long any answer may take: retries 0, so one attempt per upstream
/// bounded by the timeout, plus slack for a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(12);

const FAULTS: &[Fault] = &[
    Fault::Refuse,
    Fault::Reset,
    Fault::Hang,
    Fault::Trickle(Duration::from_millis(700)),
    Fault::TruncatedFiles,
    Fault::Truncated,
    Fault::ShortLength,
    Fault::CorruptFiles,
    Fault::CorruptMetadata,
    Fault::Status(503),
    Fault::ErrorPage200,
    Fault::MalformedPages(Malformed::HtmlWithoutLinks),
    Fault::RedirectScheme("ftp"),
    Fault::RedirectScheme("file"),
];

fn fixtures(dir: &Path) -> Vec<Built> {
    vec![Wheel::new("fixture-lib", "1.0").build(dir), Wheel::new("fixture-lib", "2.0").build(dir)]
}

fn serve(data: &Path, upstreams: &[&FixtureUpstream]) -> Server {
    let urls: Vec<String> = upstreams.iter().map(|u| u.simple_url()).collect();
    let mut args = vec!["--upstream-timeout", TIMEOUT, "--upstream-retries", "0", "--page-ttl", "0s"];
    for url in &urls {
        args.extend(["--upstream", url.as_str()]);
    }
    larder().serve_with(data, &args)
}

/// Sends `request` and checks it was answered within [`ANSWER_WITHIN`].
#[track_caller]
fn timed<T>(fault: Fault, what: &str, request: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let response = request();
    assert!(started.elapsed() < ANSWER_WITHIN, "{fault:?}: {what} took {:?}", started.elapsed());
    response
}

#[test]
fn pages_fall_back_to_the_next_upstream_or_the_stored_copy_in_bounded_time() {
    for &fault in FAULTS {
        let fx = temp_dir("faults-pages-fx");
        let data = temp_dir("faults-pages-data");
        let files = fixtures(fx.path());
        let first = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
        let second = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
        let server = serve(data.path(), &[&first, &second]);
        // Stored while healthy.
        json_page(&server, "fixture-lib");
        first.set_fault(Some(fault));
        let page =
            timed(fault, "a page with a fallback", || server.get("/simple/fixture-lib/").header("Accept", JSON).send());
        page.assert_status(200);
        assert_eq!(json_filenames(&page.json()).len(), 2, "{fault:?}");
        // Without a healthy upstream, the stored page answers (stale).
        second.set_fault(Some(fault));
        let stale = timed(fault, "a page with both upstreams failing", || {
            server.get("/simple/fixture-lib/").header("Accept", JSON).send()
        });
        stale.assert_status(200);
        assert_eq!(json_filenames(&stale.json()).len(), 2, "{fault:?}");
        first.set_fault(None);
        second.set_fault(None);
    }
}

#[test]
fn files_and_metadata_are_never_served_or_stored_wrong() {
    for &fault in FAULTS {
        let fx = temp_dir("faults-files-fx");
        let data = temp_dir("faults-files-data");
        let files = fixtures(fx.path());
        let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
        upstream.set_serve_metadata(true);
        let server = serve(data.path(), &[&upstream]);
        let page = json_page(&server, "fixture-lib");
        let wheel = &files[0];
        let file_url =
            resolve(&server.url("/simple/fixture-lib/"), json_file(&page, &wheel.filename)["url"].as_str().unwrap());
        let metadata_url = Url::parse(&format!("{file_url}.metadata")).unwrap();
        upstream.set_fault(Some(fault));
        let metadata = timed(fault, "a metadata file", || get_lenient(server.addr(), &target_of(&metadata_url), &[]));
        if let Ok(metadata) = metadata
            && metadata.status == 200
            && metadata.complete
        {
            assert_eq!(
                sha256_hex(&metadata.body),
                sha256_hex(wheel.metadata.as_deref().unwrap()),
                "{fault:?}: wrong metadata served"
            );
        }
        // Asked before the file (whose download would let larder extract
        // it), the metadata file came from the failing upstream.
        let metadata_path = FixtureUpstream::metadata_path(wheel);
        assert!(
            fault == Fault::Refuse || upstream.count(&metadata_path) > 0,
            "{fault:?}: the metadata file was not asked of the upstream: {}",
            upstream.describe_seen()
        );
        let got = timed(fault, "a file", || get_lenient(server.addr(), &target_of(&file_url), &[]));
        if let Ok(got) = got
            && got.status == 200
            && got.complete
        {
            assert_eq!(sha256_hex(&got.body), wheel.sha256, "{fault:?}: wrong bytes served as a whole file");
        }
        upstream.set_fault(None);
        drop(server);
        for digest in larder_testkit::mirror::stored_digests(data.path()) {
            assert!(
                digest == wheel.sha256 || digest == sha256_hex(wheel.metadata.as_deref().unwrap()),
                "{fault:?}: a blob that is neither the file nor its metadata was stored: {digest}"
            );
        }
    }
}

#[test]
fn a_valid_page_listing_none_of_the_stored_files_keeps_them_listed() {
    let fx = temp_dir("faults-relist-fx");
    let data = temp_dir("faults-relist-data");
    let files = fixtures(fx.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let server = serve(data.path(), &[&upstream]);
    let stored = &files[0];
    let url = file_url(&server, &stored.project, &stored.filename);
    server.get_url(&url).send().assert_status(200);
    assert!(
        larder_testkit::proxy::eventually(Duration::from_secs(10), || {
            larder_testkit::mirror::stored_digests(data.path()).contains(&stored.sha256)
        }),
        "the download is stored"
    );
    // The upstream now lists only a file larder never stored.
    for built in &files {
        upstream.remove_file(&built.filename);
    }
    let other = Wheel::new("fixture-lib", "3.0").build(fx.path());
    upstream.add(&other);
    let page = json_page(&server, "fixture-lib");
    assert_eq!(json_filenames(&page), [stored.filename.clone(), other.filename.clone()], "page {page}");
    let again = server.get_url(&url).send();
    again.assert_status(200);
    assert_eq!(sha256_hex(&again.body), stored.sha256);
    // While the upstream lists some stored file, others it drops are delisted.
    upstream.add(stored);
    let second = Wheel::new("fixture-lib", "4.0").build(fx.path());
    upstream.add(&second);
    server.get_url(&file_url(&server, &second.project, &second.filename)).send().assert_status(200);
    upstream.remove_file(&second.filename);
    assert!(
        larder_testkit::proxy::eventually(Duration::from_secs(10), || {
            !json_filenames(&json_page(&server, "fixture-lib")).contains(&second.filename)
        }),
        "a file the upstream delists is delisted while others stored stay listed"
    );
}
