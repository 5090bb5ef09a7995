//! What the caching proxy keeps and serves when things go wrong or happen
//! at once: truncated and tampered upstream bodies are never served whole
//! nor kept, malformed upstream pages never replace a good stored page,
//! one upstream download serves many concurrent clients (and streams to
//! them while it runs), and two larder processes share one data dir
//! without corrupting it.
//!
//! Every test starts its own fixture upstream (in-process, 127.0.0.1) and
//! its own `larder serve`.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use larder_testkit::proxy::{blob_stored, blobs, eventually, incompressible, tmp_entries};

fn serve(data_dir: &Path, upstream: &FixtureUpstream, extra: &[&str]) -> Server {
    let url = upstream.simple_url();
    let mut args = vec!["--upstream", url.as_str()];
    args.extend_from_slice(extra);
    larder().serve_with(data_dir, &args)
}

/// A wheel of about `kib` KiB that does not compress, so its download
/// takes many reads.
fn big_wheel(dir: &Path, name: &str, version: &str, kib: usize) -> Built {
    let seed = name.len() as u64 * 1000 + version.len() as u64;
    Wheel::new(name, version)
        .extra_file(&format!("{}/data.bin", escape_name(name)), &incompressible(kib * 1024, seed))
        .build(dir)
}

fn target_of_file(server: &Server, built: &Built) -> String {
    target_of(&file_url(server, &built.project, &built.filename))
}

#[track_caller]
fn assert_store_clean(data_dir: &Path) {
    let leftovers = {
        let mut last = Vec::new();
        eventually(Duration::from_secs(5), || {
            last = tmp_entries(data_dir);
            last.is_empty()
        });
        last
    };
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let bad: Vec<_> = blobs(data_dir).into_iter().filter(|(_, ok)| !ok).collect();
    assert!(bad.is_empty(), "blobs whose content does not match their name: {bad:?}");
}

// ------------------------------------------------------ bad file bodies --

/// The upstream sends `fault` for the wheel: no client ever gets a complete
/// 200 body, nothing is kept, pip refuses it; once the upstream is fixed
/// the good file is served and kept.
fn bad_body_is_never_served_nor_kept(fault: Fault, label: &str) {
    let fixtures = temp_dir(&format!("{label}-fx"));
    let data = temp_dir(&format!("{label}-data"));
    let whl = big_wheel(fixtures.path(), "fixture-bad", "1.0", 256);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    let upstream_path = FixtureUpstream::file_path(&whl);
    upstream.set_fault(Some(fault));

    for attempt in 1..=2 {
        let r = get_lenient(server.addr(), &target, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.status >= 500 || (r.status == 200 && !r.complete),
            "attempt {attempt}: a bad upstream body must end in a 5xx or a cut body: {}",
            r.describe()
        );
        if r.status >= 500 {
            let text = String::from_utf8_lossy(&r.body);
            assert!(!text.trim().is_empty() && !text.trim().contains('\n'), "not a one-line reason: {text:?}");
        } else {
            assert!(
                (r.body.len() as u64) < whl.size,
                "attempt {attempt}: all {} bytes were sent although they do not check out",
                r.body.len()
            );
        }
        // Nothing is kept: the next attempt goes upstream again.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!blob_stored(data.path(), &whl.sha256), "a bad body was published");
        assert_eq!(upstream.count(&upstream_path), attempt, "{}", upstream.describe_seen());
        assert_store_clean(data.path());
    }
    let log = larder_testkit::settled_cache_log(&server);
    assert!(
        log.iter().all(|l| !(l.path == target && l.status == 200 && l.cache == "hit")),
        "a bad file was served as a cache hit: {log:#?}"
    );

    // pip: refuses (hash mismatch or a broken connection), installs nothing.
    let clients = Clients::new();
    let target_env = clients.target_venv("bad");
    let index = server.url("/simple/").to_string();
    let out = run_fails(clients.pip().arg("--python").arg(&target_env).args([
        "install",
        "--index-url",
        &index,
        "fixture-bad==1.0",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(
        ["hash", "connection", "incomplete", "broken", "protocol", "502"].iter().any(|w| stderr.contains(w)),
        "pip failed for another reason: {}",
        describe_output(&out)
    );
    let check = run(clients.command(&target_env).args(["-c", "import fixture_bad"]));
    assert!(!check.status.success(), "fixture-bad was installed from a bad body");
    assert!(!blob_stored(data.path(), &whl.sha256));

    // Fixed upstream: the good file is served, kept, and served again.
    upstream.set_fault(None);
    let r = get_lenient(server.addr(), &target, &[]).unwrap();
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256, "wrong bytes after the upstream was fixed");
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &whl.sha256)));
    let before = upstream.count(&upstream_path);
    let r = get_lenient(server.addr(), &target, &[]).unwrap();
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256);
    assert_eq!(r.header("x-larder-cache"), Some("hit"));
    assert_eq!(upstream.count(&upstream_path), before, "a stored file was fetched again");
    run_ok(clients.pip().arg("--python").arg(&target_env).args(["install", "--index-url", &index, "fixture-bad==1.0"]));
    run_ok(clients.command(&target_env).args(["-c", "import fixture_bad"]));
    assert_store_clean(data.path());
}

#[test]
fn a_truncated_upstream_body_is_never_served_whole_nor_kept() {
    bad_body_is_never_served_nor_kept(Fault::TruncatedFiles, "truncated");
}

#[test]
fn a_body_with_the_wrong_hash_is_never_served_whole_nor_kept() {
    bad_body_is_never_served_nor_kept(Fault::CorruptFiles, "wronghash");
}

#[test]
fn a_cut_body_without_content_length_is_caught_by_its_hash() {
    // A plain HTML upstream (no size on the page) that ends file bodies by
    // closing the connection: a cut body looks complete to HTTP, and only
    // the sha256 check can catch it.
    let fixtures = temp_dir("closecut-fx");
    let data = temp_dir("closecut-data");
    let whl = big_wheel(fixtures.path(), "fixture-closecut", "1.0", 256);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Html, std::slice::from_ref(&whl));
    upstream.set_close_delimited_files(true);
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    upstream.set_fault(Some(Fault::TruncatedFiles));
    for attempt in 1..=2 {
        let r = get_lenient(server.addr(), &target, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.status >= 500 || (r.status == 200 && !r.complete),
            "attempt {attempt}: the client got a complete answer for a cut upstream body: {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(!blob_stored(data.path(), &whl.sha256));
    }
    assert_eq!(upstream.count(&FixtureUpstream::file_path(&whl)), 2, "{}", upstream.describe_seen());
    assert_store_clean(data.path());

    upstream.set_fault(None);
    let r = get_lenient(server.addr(), &target, &[]).unwrap();
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256);
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &whl.sha256)));
    assert_store_clean(data.path());
}

// ------------------------------------------------------ malformed pages --

/// A good page is stored; then the upstream answers `kind`: the stored page
/// is served, marked stale; a project with nothing stored is a one-line
/// 502; after the upstream recovers, the page is the normal page again.
fn malformed_page_never_replaces_a_good_one(kind: Malformed, label: &str) {
    let fixtures = temp_dir(&format!("{label}-fx"));
    let data = temp_dir(&format!("{label}-data"));
    let files = vec![
        Wheel::new("fixture-lib", "1.0").build(fixtures.path()),
        Wheel::new("fixture-lib", "2.0").build(fixtures.path()),
        Wheel::new("fixture-other", "1.0").build(fixtures.path()),
    ];
    let lib_names: Vec<String> = files[..2].iter().map(|f| f.filename.clone()).collect();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let args = ["--page-ttl", "1s", "--upstream-retries", "0"];
    let page_path = FixtureUpstream::page_path("fixture-lib");
    let get = |server: &Server, project: &str| server.get(&format!("/simple/{project}/")).header("Accept", JSON).send();
    {
        let server = serve(data.path(), &upstream, &args);
        let r = get(&server, "fixture-lib");
        r.assert_status(200);
        assert_eq!(json_filenames(&r.json()), lib_names);

        upstream.set_fault(Some(Fault::MalformedPages(kind)));
        std::thread::sleep(Duration::from_millis(1300));
        let r = get(&server, "fixture-lib");
        assert_eq!(upstream.count(&page_path), 2, "the old page was not refreshed: {}", upstream.describe_seen());
        r.assert_status(200);
        assert_eq!(
            json_filenames(&r.json()),
            lib_names,
            "a malformed upstream page ({kind:?}) replaced the good stored one"
        );
        assert_eq!(r.header("x-larder-cache"), Some("stale"), "{}", r.describe());
        let html = server.get("/simple/fixture-lib/").header("Accept", "text/html").send();
        html.assert_status(200);
        assert_eq!(html::tags(&html.text(), "a").len(), 2, "{}", html.text());
        let log = larder_testkit::wait_for_cache_log(&server, Duration::from_secs(5), |log| {
            log.iter().any(|l| l.path == "/simple/fixture-lib/" && l.cache == "stale")
        });
        assert!(
            log.iter().any(|l| l.path == "/simple/fixture-lib/" && l.cache == "stale" && l.status == 200),
            "{log:#?}"
        );

        // Nothing stored for this one: a clear 502.
        let r = get(&server, "fixture-other");
        assert_eq!(r.status, 502, "malformed page ({kind:?}) with nothing stored: {}", r.describe());
        assert_eq!(r.media_type().as_deref(), Some("text/plain"));
        let text = r.text();
        assert!(!text.trim().is_empty() && !text.trim().contains('\n'), "the reason should be one line: {text:?}");
    }
    // The upstream recovers. (A fresh process: the stale back-off of the
    // old one is in memory only.) The stored page is still the good one and
    // is brought up to date normally.
    upstream.set_fault(None);
    let server = serve(data.path(), &upstream, &args);
    std::thread::sleep(Duration::from_millis(1100));
    let r = get(&server, "fixture-lib");
    r.assert_status(200);
    assert_eq!(json_filenames(&r.json()), lib_names);
    assert!(matches!(r.header("x-larder-cache"), Some("revalidated" | "miss")), "{}", r.describe());
    let r = get(&server, "fixture-other");
    r.assert_status(200);
    assert_eq!(json_filenames(&r.json()), vec![files[2].filename.clone()]);
}

#[test]
fn a_garbage_page_never_replaces_a_good_one() {
    malformed_page_never_replaces_a_good_one(Malformed::Garbage, "garbage");
}

#[test]
fn a_json_page_of_the_wrong_shape_never_replaces_a_good_one() {
    malformed_page_never_replaces_a_good_one(Malformed::JsonWrongShape, "wrongshape");
}

#[test]
fn an_html_error_page_without_links_never_replaces_a_good_one() {
    malformed_page_never_replaces_a_good_one(Malformed::HtmlWithoutLinks, "nolinks");
}

// ---------------------------------------------------------- single-flight --

#[test]
fn twenty_concurrent_clients_cause_one_upstream_download() {
    let fixtures = temp_dir("flight-fx");
    let data = temp_dir("flight-data");
    let whl = big_wheel(fixtures.path(), "fixture-big", "1.0", 1024);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    upstream.hold_file(&whl.filename, Duration::from_secs(20));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    let upstream_path = FixtureUpstream::file_path(&whl);

    const N: usize = 20;
    let sent = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (sent, barrier, target, addr) = (sent.clone(), barrier.clone(), target.clone(), server.addr());
            std::thread::spawn(move || {
                barrier.wait();
                let stream = send_get(addr, &target, &[])?;
                sent.fetch_add(1, Ordering::SeqCst);
                read_received(stream, &target)
            })
        })
        .collect();
    // Hold the upstream download until every client has asked.
    assert!(
        eventually(Duration::from_secs(10), || sent.load(Ordering::SeqCst) == N && upstream.count(&upstream_path) >= 1),
        "the clients or the upstream download did not start: sent {}, {}",
        sent.load(Ordering::SeqCst),
        upstream.describe_seen()
    );
    std::thread::sleep(Duration::from_millis(500));
    upstream.release_holds();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().unwrap().unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert!(r.status == 200 && r.complete, "client {i}: {}", r.describe());
        assert_eq!(r.sha256(), whl.sha256, "client {i} got wrong bytes");
    }
    assert_eq!(
        upstream.count(&upstream_path),
        1,
        "20 concurrent clients caused several upstream downloads: {}",
        upstream.describe_seen()
    );
    let log = server.wait_for_log(Duration::from_secs(5), |l| l.iter().filter(|r| r.path == target).count() == N);
    assert_eq!(log.iter().filter(|r| r.path == target && r.status == 200).count(), N);
    let misses =
        larder_testkit::cache_log(&server).into_iter().filter(|l| l.path == target && l.cache == "miss").count();
    assert!(misses >= 2, "the clients did not overlap the download ({misses} misses); test is void");
    // Stored right after the clients got their bytes.
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &whl.sha256)));
    assert_store_clean(data.path());
}

#[test]
fn twenty_concurrent_requests_for_a_new_page_cause_one_upstream_request() {
    let fixtures = temp_dir("pageflight-fx");
    let data = temp_dir("pageflight-data");
    let files = vec![
        Wheel::new("fixture-lib", "1.0").build(fixtures.path()),
        Wheel::new("fixture-lib", "2.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_page_delay(Duration::from_millis(800));
    let server = serve(data.path(), &upstream, &["--page-ttl", "2s"]);
    let page_path = FixtureUpstream::page_path("fixture-lib");

    let storm = || {
        const N: usize = 20;
        let barrier = Arc::new(Barrier::new(N));
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (barrier, addr) = (barrier.clone(), server.addr());
                std::thread::spawn(move || {
                    barrier.wait();
                    let accept = if i % 2 == 0 { JSON } else { "text/html" };
                    Request::new(addr, "GET", "/simple/fixture-lib/").header("Accept", accept).send()
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            r.assert_status(200);
            for f in &files {
                assert!(r.text().contains(&f.filename), "{}", r.describe());
            }
        }
    };
    // A page never fetched: one upstream request for all twenty.
    storm();
    assert_eq!(upstream.count(&page_path), 1, "{}", upstream.describe_seen());
    // An expired page: one revalidation for all twenty.
    std::thread::sleep(Duration::from_millis(2200));
    storm();
    assert_eq!(upstream.count(&page_path), 2, "{}", upstream.describe_seen());
    assert!(upstream.seen()[1].if_none_match.is_some(), "{}", upstream.describe_seen());
}

#[test]
fn a_download_is_streamed_to_the_client_while_it_arrives() {
    let fixtures = temp_dir("stream-fx");
    let data = temp_dir("stream-data");
    let whl = big_wheel(fixtures.path(), "fixture-stream", "1.0", 1024);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    // The upstream sends half, then waits (up to 30 s) to be released.
    upstream.hold_file(&whl.filename, Duration::from_secs(30));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);

    let mut stream = send_get(server.addr(), &target, &[]).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let started = Instant::now();
    let body_start = loop {
        let n = stream.read(&mut chunk).unwrap_or_else(|e| {
            panic!(
                "larder sent no body while the upstream download was held ({e}, after {:?}, {} bytes so far)",
                started.elapsed(),
                got.len()
            )
        });
        assert!(n > 0, "larder closed the connection early");
        got.extend_from_slice(&chunk[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n")
            && got.len() > i + 4 + 64 * 1024
        {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..body_start]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The client has body bytes; the upstream has not finished sending.
    assert!(!blob_stored(data.path(), &whl.sha256), "the download finished early; test is void");
    upstream.release_holds();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.read_to_end(&mut got).unwrap();
    let r = larder_testkit::proxy::get_lenient(server.addr(), &target, &[]).unwrap();
    assert_eq!(r.sha256(), whl.sha256);
    let body = &got[body_start..];
    assert_eq!(body.len() as u64, whl.size);
    assert_eq!(sha256_hex(body), whl.sha256);
}

#[test]
fn a_client_that_goes_away_does_not_stop_the_download() {
    let fixtures = temp_dir("goaway-fx");
    let data = temp_dir("goaway-data");
    let whl = big_wheel(fixtures.path(), "fixture-goaway", "1.0", 512);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    upstream.hold_file(&whl.filename, Duration::from_secs(20));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);

    // A client reads the start of the body, then hangs up.
    let mut stream = send_get(server.addr(), &target, &[]).unwrap();
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).unwrap();
    assert!(n > 0 && first.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&first[..n]));
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    upstream.release_holds();

    // The download still completes and is kept.
    assert!(
        eventually(Duration::from_secs(10), || blob_stored(data.path(), &whl.sha256)),
        "the download stopped with its only client"
    );
    let r = get_lenient(server.addr(), &target, &[]).unwrap();
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256);
    assert_eq!(r.header("x-larder-cache"), Some("hit"));
    assert_eq!(upstream.count(&FixtureUpstream::file_path(&whl)), 1, "{}", upstream.describe_seen());
    assert_store_clean(data.path());
}

// ------------------------------------------- served first, stored after --

/// Another process holding the write lock of larder's database (an open
/// `BEGIN IMMEDIATE` transaction, by the test venv's Python), as a long
/// write of another larder process would; released on drop.
struct DbWriteLock {
    holder: std::process::Child,
}

impl DbWriteLock {
    fn take(clients: &Clients, data_dir: &Path) -> DbWriteLock {
        const HOLD: &str = "import sqlite3, sys\n\
            db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
            db.execute('BEGIN IMMEDIATE')\n\
            print('locked', flush=True)\n\
            sys.stdin.read()\n";
        let mut holder = clients
            .python()
            .args(["-c", HOLD])
            .arg(data_dir.join("larder.db"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the lock holder");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "locked", "the lock holder did not get the lock");
        DbWriteLock { holder }
    }
}

impl Drop for DbWriteLock {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// GETs `target` and reads the whole answer within `within`.
fn get_within(addr: std::net::SocketAddr, target: &str, within: Duration) -> Received {
    let stream = send_get(addr, target, &[]).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    read_received(stream, target).unwrap()
}

/// A client gets the whole verified body as soon as its digest checks out,
/// without waiting for it to be stored: while another process holds the
/// database's write lock (so the download cannot be recorded), the file is
/// served whole, to its first client and to the next one, from a single
/// upstream download; once the lock is gone it is stored and served as a
/// hit.
#[test]
fn a_verified_download_is_served_whole_before_it_is_stored() {
    let fixtures = temp_dir("storelater-fx");
    let data = temp_dir("storelater-data");
    let whl = big_wheel(fixtures.path(), "fixture-storelater", "1.0", 512);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    let clients = Clients::new();

    let lock = DbWriteLock::take(&clients, data.path());
    for client in ["first", "second"] {
        let r = get_within(server.addr(), &target, Duration::from_secs(10));
        assert!(r.status == 200 && r.complete, "{client} client, while storing is held up: {}", r.describe());
        assert_eq!(r.sha256(), whl.sha256, "{client} client got wrong bytes");
    }
    drop(lock);

    let stored = eventually(Duration::from_secs(10), || {
        let r = get_lenient(server.addr(), &target, &[]).unwrap();
        assert!(r.complete && r.sha256() == whl.sha256, "{}", r.describe());
        r.header("x-larder-cache") == Some("hit")
    });
    assert!(stored, "not stored after the database was free again");
    let upstream_path = FixtureUpstream::file_path(&whl);
    assert_eq!(upstream.count(&upstream_path), 1, "{}", upstream.describe_seen());
    assert_store_clean(data.path());
}

/// A graceful shutdown (SIGTERM) right after a client got its download
/// waits until the download is stored, even when storing is held up
/// (another process holds the database's write lock): the file and its
/// core metadata are there for the next larder.
#[test]
fn a_graceful_shutdown_finishes_storing_what_clients_received() {
    let fixtures = temp_dir("termstore-fx");
    let data = temp_dir("termstore-data");
    let whl = big_wheel(fixtures.path(), "fixture-termstore", "1.0", 256);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    let mut server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    let clients = Clients::new();

    let lock = DbWriteLock::take(&clients, data.path());
    let r = get_within(server.addr(), &target, Duration::from_secs(10));
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256);
    run_ok(std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.is_running(), "larder stopped before the download it served was stored");
    drop(lock);
    assert!(eventually(Duration::from_secs(10), || !server.is_running()), "larder did not stop once storing could end");

    assert!(blob_stored(data.path(), &whl.sha256));
    let offline = larder().serve_with(data.path(), &["--offline"]);
    let page = json_page(&offline, "fixture-termstore");
    assert_eq!(
        json_file(&page, &whl.filename)["core-metadata"]["sha256"].as_str(),
        whl.core_metadata_sha256().as_deref(),
        "the core metadata was not extracted before larder stopped: {page}"
    );
    assert_store_clean(data.path());
}

/// When storing a verified download fails (here: the blob's directory
/// cannot be created), its clients still get the whole body, nothing is
/// published nor left behind, and the next request downloads it again.
#[test]
fn a_verified_download_that_cannot_be_stored_is_still_served_whole() {
    let fixtures = temp_dir("nostore-fx");
    let data = temp_dir("nostore-data");
    let whl = big_wheel(fixtures.path(), "fixture-nostore", "1.0", 256);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&whl));
    let server = serve(data.path(), &upstream, &[]);
    let target = target_of_file(&server, &whl);
    let upstream_path = FixtureUpstream::file_path(&whl);

    // A file where the blob's directory `blobs/sha256/<aa>/<bb>` belongs.
    let shard = data.path().join("blobs/sha256").join(&whl.sha256[..2]);
    std::fs::create_dir_all(&shard).unwrap();
    let obstacle = shard.join(&whl.sha256[2..4]);
    std::fs::write(&obstacle, b"not a directory").unwrap();

    let r = get_lenient(server.addr(), &target, &[]).unwrap();
    assert!(r.status == 200 && r.complete, "{}", r.describe());
    assert_eq!(r.sha256(), whl.sha256);
    assert!(
        eventually(Duration::from_secs(5), || tmp_entries(data.path()).is_empty()),
        "the temporary file was left behind"
    );
    assert!(!blob_stored(data.path(), &whl.sha256));

    // Nothing was kept: a later request downloads again, and stores it.
    std::fs::remove_file(&obstacle).unwrap();
    let downloaded_again = eventually(Duration::from_secs(5), || {
        let r = get_lenient(server.addr(), &target, &[]).unwrap();
        assert!(r.complete && r.sha256() == whl.sha256, "{}", r.describe());
        upstream.count(&upstream_path) == 2
    });
    assert!(downloaded_again, "{}", upstream.describe_seen());
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &whl.sha256)));
    assert_store_clean(data.path());
}

// ------------------------------------------- two processes, one data dir --

#[test]
fn two_processes_share_one_data_dir_under_load() {
    let fixtures = temp_dir("twoproc-fx");
    let data = temp_dir("twoproc-data");
    let mut files = Vec::new();
    for (project, versions) in [("fixture-alpha", ["1.0", "1.1", "2.0"]), ("fixture-beta", ["1.0", "3.0", "3.1"])] {
        for v in versions {
            files.push(big_wheel(fixtures.path(), project, v, 192));
        }
    }
    files.push(Sdist::new("fixture-beta", "3.1").build(fixtures.path()));
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_serve_metadata(true);
    for f in &files {
        upstream.hold_file(&f.filename, Duration::from_millis(300));
    }
    let a = serve(data.path(), &upstream, &[]);
    let b = serve(data.path(), &upstream, &[]);
    let servers = [a.addr(), b.addr()];
    let files = Arc::new(files);

    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (files, barrier) = (files.clone(), barrier.clone());
            std::thread::spawn(move || -> Vec<String> {
                let mut errors = Vec::new();
                barrier.wait();
                // Pages from both processes at once (both may fetch them).
                let mut urls = std::collections::HashMap::new();
                for (i, project) in ["fixture-alpha", "fixture-beta"].iter().enumerate() {
                    let addr = servers[(t + i) % 2];
                    let r = Request::new(addr, "GET", &format!("/simple/{project}/")).header("Accept", JSON).send();
                    if r.status != 200 {
                        errors.push(format!("page {project} from {addr}: {}", r.describe()));
                        continue;
                    }
                    for f in r.json()["files"].as_array().unwrap() {
                        let url = resolve(
                            &Url::parse(&format!("http://{addr}/simple/{project}/")).unwrap(),
                            f["url"].as_str().unwrap(),
                        );
                        urls.insert(f["filename"].as_str().unwrap().to_owned(), target_of(&url));
                    }
                }
                for round in 0..files.len() * 2 {
                    let f = &files[(t + round) % files.len()];
                    let addr = servers[(t + round / files.len()) % 2];
                    let Some(target) = urls.get(&f.filename) else {
                        errors.push(format!("{} not listed", f.filename));
                        continue;
                    };
                    for target in [target.clone(), format!("{target}.metadata")] {
                        let is_metadata = target.ends_with(".metadata");
                        if is_metadata && !f.is_wheel() {
                            continue;
                        }
                        match get_lenient(addr, &target, &[]) {
                            Ok(r) if r.status == 200 && r.complete => {
                                let want =
                                    if is_metadata { f.core_metadata_sha256().unwrap() } else { f.sha256.clone() };
                                if r.sha256() != want {
                                    errors.push(format!("{target} from {addr}: wrong bytes"));
                                }
                            }
                            Ok(r) => errors.push(format!("{addr}: {}", r.describe())),
                            Err(e) => errors.push(format!("{addr}: {e}")),
                        }
                    }
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(errors.is_empty(), "{} errors:\n{}", errors.len(), errors.join("\n"));

    for server in [&a, &b] {
        let log = larder_testkit::settled_cache_log(server);
        let bad: Vec<_> = log.iter().filter(|l| l.status >= 400).collect();
        assert!(bad.is_empty(), "error responses: {bad:#?}");
    }
    for f in files.iter() {
        assert!(
            eventually(Duration::from_secs(5), || blob_stored(data.path(), &f.sha256)),
            "{} not stored",
            f.filename
        );
        let n = upstream.count(&FixtureUpstream::file_path(f));
        assert!(
            (1..=2).contains(&n),
            "{} fetched {n} times by two processes (at most once each): {}",
            f.filename,
            upstream.describe_seen()
        );
    }
    assert_store_clean(data.path());
}

// ------------------------------------------------- stored files stay put --

/// larder serves `/files/<sha256>/<name>` with `Cache-Control: immutable`
/// (a year): a URL it has served must keep working while the blob is
/// stored, whatever the upstream does to its listing later.
#[test]
fn a_served_file_url_keeps_working_after_the_upstream_delists_the_file() {
    let fixtures = temp_dir("delist-fx");
    let data = temp_dir("delist-data");
    let old = Wheel::new("fixture-delist", "1.0").build(fixtures.path());
    let new = Wheel::new("fixture-delist", "2.0").build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &[old.clone(), new.clone()]);
    let server = serve(data.path(), &upstream, &["--page-ttl", "1s"]);
    let url = file_url(&server, "fixture-delist", &old.filename);
    let r = server.get_url(&url).send();
    r.assert_status(200);
    assert!(r.header("cache-control").is_some_and(|c| c.contains("immutable")), "{}", r.describe());
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &old.sha256)));

    // The upstream deletes release 1.0.
    upstream.remove_file(&old.filename);
    std::thread::sleep(Duration::from_millis(1300));
    let page = json_page(&server, "fixture-delist");
    assert_eq!(json_filenames(&page), vec![new.filename.clone()], "{page}");
    let r = server.get_url(&url).send();
    assert_eq!(
        r.status,
        200,
        "a file URL larder served as immutable is gone although the blob is stored: {}",
        r.describe()
    );
    assert_eq!(sha256_hex(&r.body), old.sha256);
}

/// An upstream that starts listing other bytes under a filename larder has
/// already stored (a filename can never be reused on a real index: this is
/// a broken or compromised upstream) does not change what larder serves
/// under that filename.
#[test]
fn a_stored_filename_is_not_swapped_for_other_content() {
    let fixtures = temp_dir("swap-fx");
    let other = temp_dir("swap-fx2");
    let data = temp_dir("swap-data");
    let original = Wheel::new("fixture-swap", "1.0").summary("original").build(fixtures.path());
    let swapped = Wheel::new("fixture-swap", "1.0").summary("swapped").build(other.path());
    assert_eq!(original.filename, swapped.filename);
    assert_ne!(original.sha256, swapped.sha256);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, std::slice::from_ref(&original));
    let server = serve(data.path(), &upstream, &["--page-ttl", "1s"]);
    let url = file_url(&server, "fixture-swap", &original.filename);
    server.get_url(&url).send().assert_status(200);
    assert!(eventually(Duration::from_secs(5), || blob_stored(data.path(), &original.sha256)));

    upstream.add(&swapped);
    std::thread::sleep(Duration::from_millis(1300));
    let page = json_page(&server, "fixture-swap");
    let listed = json_file(&page, &original.filename)["hashes"]["sha256"].clone();
    let r = server.get_url(&url).send();
    assert_eq!(
        (listed.as_str(), r.status),
        (Some(original.sha256.as_str()), 200),
        "the stored {} was replaced by other content from the upstream (page now lists {listed}, \
         the URL served before answers {})",
        original.filename,
        r.status
    );
    assert_eq!(sha256_hex(&r.body), original.sha256);
}
