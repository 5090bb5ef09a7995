//! `/simple/` through the proxy: the upstream's whole project list merged
//! with hosted projects (a hosted name hides the upstream one), fetched
//! again after `--project-list-ttl`, served stale when the upstream is
//! down (also after a restart), and kept and sent gzip-compressed when it
//! is large.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use larder_testkit::synthetic::{self, Synthetic};

fn serve(data_dir: &Path, upstream: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--upstream", upstream];
    args.extend_from_slice(extra);
    larder().serve_with(data_dir, &args)
}

/// The JSON list: display name by normalized name.
fn json_list(server: &Server) -> (Response, BTreeMap<String, Value>) {
    let r = server.get("/simple/").header("Accept", JSON).send();
    r.assert_status(200);
    let page: Value = serde_json::from_slice(&r.decoded_body()).unwrap();
    let projects = page["projects"].as_array().unwrap_or_else(|| panic!("no projects: {page}"));
    let by_name = projects.iter().map(|p| (normalize(p["name"].as_str().unwrap()), p.clone())).collect();
    assert_eq!(projects.len(), BTreeMap::len(&by_name), "a name is listed twice: {page}");
    (r, by_name)
}

#[test]
fn the_upstream_list_is_merged_with_hosted_projects_kept_fresh_and_served_stale() {
    let fixtures = temp_dir("list-merge-fx");
    let data = temp_dir("list-merge-data");
    let public = Wheel::new("fixture-public", "1.0").build(fixtures.path());
    let shared_upstream = Wheel::new("fixture-shared", "1.0").build(fixtures.path());
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &[public, shared_upstream]);
    let hosted_dir = temp_dir("list-merge-hosted");
    Wheel::new("Fixture_Shared", "2.0").build(hosted_dir.path());
    Wheel::new("fixture-internal", "1.0").build(hosted_dir.path());
    larder().add(data.path(), &[hosted_dir.path()]).assert_success();
    let server = serve(data.path(), &upstream.simple_url(), &["--project-list-ttl", "1s"]);

    let (r, list) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("miss"), "{}", r.describe());
    assert_eq!(
        list.keys().map(String::as_str).collect::<Vec<_>>(),
        ["fixture-internal", "fixture-public", "fixture-shared"],
        "upstream and hosted projects, each once"
    );
    assert_eq!(list["fixture-shared"]["name"], "Fixture_Shared", "the hosted project's entry wins");
    let html = server.get("/simple/").header("Accept", "text/html").send();
    html.assert_status(200);
    let hrefs: Vec<String> = html::tags(&html.text(), "a").iter().map(|a| a.attr("href").unwrap().to_owned()).collect();
    assert_eq!(hrefs, ["fixture-internal/", "fixture-public/", "fixture-shared/"]);
    assert_eq!(upstream.count("/simple/"), 1, "one fetch serves both formats: {}", upstream.describe_seen());

    // After the TTL, the list is fetched again.
    upstream.add(&Wheel::new("fixture-later", "1.0").build(fixtures.path()));
    std::thread::sleep(Duration::from_millis(1200));
    let (r, list) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("miss"), "{}", r.describe());
    assert!(list.contains_key("fixture-later"), "{list:?}");
    assert_eq!(upstream.count("/simple/"), 2, "{}", upstream.describe_seen());

    // The upstream goes down: the last list is served, marked stale.
    upstream.set_fault(Some(Fault::Refuse));
    std::thread::sleep(Duration::from_millis(1200));
    let (r, list) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("stale"), "{}", r.describe());
    assert_eq!(list.len(), 4, "{list:?}");
    assert!(list.contains_key("fixture-later") && list.contains_key("fixture-internal"), "{list:?}");
}

#[test]
fn a_whole_index_list_is_kept_and_sent_compressed() {
    let index = Synthetic { projects: 30_000, generation: 1, changed_every: 7 };
    let data = temp_dir("list-large-data");
    let server = serve(data.path(), &synthetic::start(index), &[]);

    let gzip = server.get("/simple/").header("Accept", "text/html").header("Accept-Encoding", "gzip").send();
    gzip.assert_status(200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{}", gzip.describe());
    assert!(gzip.header("vary").is_some_and(|v| v.contains("Accept-Encoding")), "{}", gzip.describe());
    let text = String::from_utf8(gzip.decoded_body()).unwrap();
    assert_eq!(text.matches("<a href=").count(), 30_000);
    assert!(text.contains(&format!("<a href=\"{0}/\">{0}</a>", Synthetic::name(29_999))));
    assert!(gzip.body.len() * 5 < text.len(), "{} bytes compressed of {}", gzip.body.len(), text.len());

    // A client without gzip gets the same page decompressed, its length
    // announced.
    let plain = server.get("/simple/").header("Accept", "text/html").send();
    plain.assert_status(200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("content-length"), Some(text.len().to_string().as_str()));
    assert_eq!(plain.body, text.as_bytes());
    assert_eq!(plain.header("x-larder-cache"), Some("hit"));

    let etag = gzip.expect_header("etag");
    let again = server.get("/simple/").header("Accept-Encoding", "gzip").header("If-None-Match", etag).send();
    assert_eq!(again.status, 304, "{}", again.describe());

    // JSON carries the upstream's serial of each project.
    let (_, list) = json_list(&server);
    assert_eq!(list.len(), 30_000);
    let name = Synthetic::name(6);
    assert_eq!(list[&name]["_last-serial"], index.serial(6), "{}", list[&name]);
}

#[test]
fn the_upstream_list_outlives_a_restart_while_the_upstream_is_down() {
    let fixtures = temp_dir("list-restart-fx");
    let data = temp_dir("list-restart-data");
    let files: Vec<_> =
        (0..3).map(|i| Wheel::new(&format!("fixture-kept-{i}"), "1.0").build(fixtures.path())).collect();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let server = serve(data.path(), &upstream.simple_url(), &["--project-list-ttl", "1s"]);
    let (r, before) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("miss"), "{}", r.describe());
    assert_eq!(before.len(), 3, "{before:?}");
    drop(server);

    // Restarted with the upstream down and the list's TTL run out: the
    // list the first run fetched is listed, stale, as the upstream wrote it.
    upstream.set_fault(Some(Fault::Refuse));
    std::thread::sleep(Duration::from_millis(1100));
    let server = serve(data.path(), &upstream.simple_url(), &["--project-list-ttl", "1s"]);
    let (r, after) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("stale"), "{}", r.describe());
    assert_eq!(after, before);
    drop(server);

    // Offline, and within the TTL, the kept list is listed too.
    let server = serve(data.path(), &upstream.simple_url(), &["--offline"]);
    let (r, offline) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("offline"), "{}", r.describe());
    assert_eq!(offline, before);
    drop(server);
    let server = serve(data.path(), &upstream.simple_url(), &["--project-list-ttl", "1h"]);
    let (r, fresh) = json_list(&server);
    assert_eq!(r.header("x-larder-cache"), Some("hit"), "{}", r.describe());
    assert_eq!(fresh, before);
}
