//! What an operator sees: `/metrics` (request latency and bytes by route,
//! page-cache lookups, per-upstream requests, failures, bytes and latency,
//! files stored by kind, evictions) moving as requests come in; one log
//! line per request, per eviction and per upstream failure; and `larder
//! status` describing the data dir with the server stopped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use larder_testkit::proxy::metric;

const PAGE_ROUTE: &str = "/simple/{project}/";
const FILE_ROUTE: &str = "/files/{sha256}/{filename}";

fn log_messages(server: &Server) -> Vec<String> {
    server
        .log_lines()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|line| line["fields"]["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn metrics_logs_and_status_follow_what_happens() {
    let fixtures = temp_dir("observe-fx");
    let hosted_dir = temp_dir("observe-hosted");
    let data = temp_dir("observe-data");
    let d = fixtures.path();
    let a = Wheel::new("observe-a", "1.0").build(d);
    let b = Wheel::new("observe-b", "1.0").build(d);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &[a.clone(), b.clone()]);
    let hosted = Wheel::new("observe-local", "1.0").build(hosted_dir.path());
    larder().add(data.path(), &[hosted_dir.path()]).assert_success();
    // The first upstream is down: every page asks it first, and fails.
    let down = larder_testkit::client::closed_index_url().to_string();
    let upstreams = format!("{down},{}", upstream.simple_url());
    let server = larder()
        .serve_with(data.path(), &["--upstream", &upstreams, "--upstream-retries", "0", "--max-cache-size", "1"]);

    for file in [&a, &b, &a] {
        server.get(&format!("/simple/{}/", file.project)).send().assert_status(200);
        server.get(&format!("/files/{}/{}", file.sha256, file.filename)).send().assert_status(200);
    }
    let started = Instant::now();
    while !log_messages(&server).iter().any(|m| m == "evicted from the cache") {
        assert!(started.elapsed() < Duration::from_secs(20), "nothing evicted: {}", server.stderr_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    // That line may come from a pass before the last download, which
    // fetched an evicted file again: wait, as long as above, for a pass to
    // have recorded an eviction in the store before reading the figures.
    let status = || {
        let mut status = larder().command();
        status.args(["status", "--data-dir"]).arg(data.path());
        larder_testkit::mirror::run_larder(&mut status)
    };
    let started = Instant::now();
    while status().stdout.lines().any(|l| l.trim_start().starts_with("evicted ") && l.contains(" 0 files")) {
        assert!(started.elapsed() < Duration::from_secs(20), "no eviction recorded: {}", server.stderr_text());
        std::thread::sleep(Duration::from_millis(200));
    }

    let first = server.get("/metrics").send();
    first.assert_status(200);
    let m = first.text();
    let value = |name: &str, labels: &[(&str, &str)]| metric(&m, name, labels);
    assert!(value("larder_request_duration_seconds_count", &[("route", PAGE_ROUTE)]) >= 3.0, "{m}");
    assert!(value("larder_request_duration_seconds_count", &[("route", FILE_ROUTE)]) >= 3.0, "{m}");
    let served = value("larder_served_bytes_total", &[("route", FILE_ROUTE)]);
    assert!(served >= (2 * a.size + b.size) as f64, "file bytes served: {served}\n{m}");
    assert!(value("larder_page_cache_lookups_total", &[("result", "hit")]) >= 1.0, "{m}");
    assert!(value("larder_page_cache_lookups_total", &[("result", "miss")]) >= 2.0, "{m}");
    let good = upstream.simple_url();
    assert!(value("larder_upstream_errors_total", &[("upstream", &down)]) >= 2.0, "{m}");
    assert_eq!(value("larder_upstream_errors_total", &[("upstream", &good)]), 0.0, "{m}");
    let fetched = value("larder_upstream_fetched_bytes_total", &[("upstream", &good)]);
    assert!(fetched >= (a.size + b.size) as f64, "bytes fetched: {fetched}\n{m}");
    assert!(value("larder_upstream_request_duration_seconds_count", &[("upstream", &good)]) >= 4.0, "{m}");
    assert!(value("larder_evicted_files_total", &[]) >= 1.0, "{m}");
    assert!(value("larder_evicted_bytes_total", &[]) >= a.size.min(b.size) as f64, "{m}");
    assert_eq!(value("larder_cache_max_bytes", &[]), 1.0, "{m}");
    assert_eq!(value("larder_stored_files", &[("kind", "hosted")]), 1.0, "{m}");
    assert_eq!(value("larder_stored_bytes", &[("kind", "hosted")]), hosted.size as f64, "{m}");
    assert!(value("larder_stored_files", &[("kind", "evicted")]) >= 1.0, "{m}");

    // The counters move with the next requests.
    let page_requests = value("larder_request_duration_seconds_count", &[("route", PAGE_ROUTE)]);
    let hits = value("larder_page_cache_lookups_total", &[("result", "hit")]);
    server.get(&format!("/simple/{}/", a.project)).send().assert_status(200);
    let m2 = server.get("/metrics").send().text();
    assert_eq!(metric(&m2, "larder_request_duration_seconds_count", &[("route", PAGE_ROUTE)]), page_requests + 1.0);
    assert_eq!(metric(&m2, "larder_page_cache_lookups_total", &[("result", "hit")]), hits + 1.0, "{m2}");

    // One log line per request (with its duration and cache outcome), per
    // eviction and per upstream failure.
    let lines: Vec<Value> = server.log_lines().into_iter().filter_map(Result::ok).collect();
    let request = lines.iter().find(|l| l["fields"]["message"] == "request").expect("a request line");
    assert!(request["fields"]["micros"].is_u64() && request["fields"]["cache"].is_string(), "{request}");
    let eviction = lines.iter().find(|l| l["fields"]["message"] == "evicted from the cache").expect("an eviction line");
    assert!(eviction["fields"]["size"].is_u64() && eviction["fields"]["sha256"].is_string(), "{eviction}");
    let failure = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("upstream failure")))
        .unwrap_or_else(|| panic!("no upstream failure line: {}", server.stderr_text()));
    assert!(failure["fields"]["url"].as_str().is_some_and(|u| u.starts_with(down.trim_end_matches("simple/"))));
    drop(server);

    // `larder status` with the server stopped.
    let mut pin = larder().command();
    pin.args(["pin", "observe-b", "--data-dir"]).arg(data.path());
    larder_testkit::mirror::run_larder(&mut pin).assert_success();
    let out = status();
    out.assert_success();
    let line =
        |kind: &str| out.stdout.lines().find(|l| l.trim_start().starts_with(kind)).unwrap_or_default().to_owned();
    assert!(line("hosted").contains(" 1 files") && line("hosted").contains(&format!("({} bytes)", hosted.size)));
    assert!(line("mirrored").contains(" 0 files"), "{}", out.describe());
    let files = |kind: &str| -> u64 { line(kind).split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(99) };
    // Each proxied file is cached or evicted (one was evicted at least).
    assert_eq!(files("cached") + files("evicted"), 2, "{}", out.describe());
    assert!(files("evicted") >= 1, "{}", out.describe());
    assert!(out.stdout.contains("pinned: observe-b"), "{}", out.describe());
    assert!(out.stdout.contains("last serial: "), "{}", out.describe());
}
