//! `larder mirror --all` against an upstream of a few hundred generated
//! projects: the first run mirrors everything; after a change upstream (a
//! new release, a yanked file, a deleted project) the second run asks only
//! for the list, the changed projects' pages and the new file; a third run
//! with nothing changed asks for the list only; a project deleted and
//! listed again comes back. A project whose download failed is tried again
//! by the next run although its serial did not change, and widening the
//! filters takes effect on the next run. Small and big files are stored
//! (and checked) alike, whether received in memory or streamed to disk.

use std::collections::BTreeMap;
use std::path::Path;

use larder_testkit::mirror::{SerialUpstream, run_larder, stored_digests};
use larder_testkit::{Built, Larder, Wheel, temp_dir};
use serde_json::Value;

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const PROJECTS: usize = 300;

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

fn name(i: usize) -> String {
    format!("bulk-{i:03}")
}

fn mirror_all(larder: &Larder, data_dir: &Path, upstream: &SerialUpstream) -> larder_testkit::mirror::Outcome {
    let mut cmd = larder.command();
    cmd.arg("mirror").arg("--data-dir").arg(data_dir).args([
        "--upstream",
        &upstream.simple_url(),
        "--all",
        "--jobs",
        "4",
        "--quiet",
    ]);
    run_larder(&mut cmd)
}

/// Requests other than the ones expected, for messages.
fn unexpected(counts: &BTreeMap<String, usize>, expected: &[String]) -> BTreeMap<String, usize> {
    counts.iter().filter(|(path, _)| !expected.contains(path)).map(|(p, c)| (p.clone(), *c)).collect()
}

fn offline_json(server: &larder_testkit::Server, path: &str) -> (u16, Value) {
    let response = server.get(path).header("Accept", JSON).send();
    let json = if response.status == 200 { response.json() } else { Value::Null };
    (response.status, json)
}

#[test]
fn all_mirrors_everything_then_only_what_changed() {
    let larder = larder();
    let fixtures = temp_dir("mirror-all-fixtures");
    let data = temp_dir("mirror-all-data");
    let upstream = SerialUpstream::start();
    let wheels: Vec<Built> = (0..PROJECTS).map(|i| Wheel::new(&name(i), "1.0").build(fixtures.path())).collect();
    upstream.add_all(&wheels);

    // --- first run: everything ---------------------------------------
    let first = mirror_all(&larder, data.path(), &upstream);
    first.assert_success();
    let stored = stored_digests(data.path());
    let missing: Vec<&str> =
        wheels.iter().filter(|w| !stored.contains(&w.sha256)).map(|w| w.filename.as_str()).collect();
    assert!(missing.is_empty(), "not mirrored: {missing:?}\n{}", first.describe());
    let counts = upstream.counts();
    assert_eq!(counts.get("/simple/"), Some(&1), "{}", upstream.describe());
    for (i, wheel) in wheels.iter().enumerate() {
        assert_eq!(counts.get(&SerialUpstream::page_path(&name(i))), Some(&1), "page of {}", name(i));
        assert_eq!(counts.get(&SerialUpstream::file_path(wheel)), Some(&1), "{}", wheel.filename);
    }

    // --- a change upstream -------------------------------------------
    let new_release = Wheel::new(&name(7), "2.0").build(fixtures.path());
    upstream.add(&new_release);
    let yanked = &wheels[42];
    upstream.yank(&yanked.filename, "broken build");
    upstream.delete_project(&name(123));
    upstream.reset();

    // --- second run: only the change ---------------------------------
    let second = mirror_all(&larder, data.path(), &upstream);
    second.assert_success();
    let counts = upstream.counts();
    let expected = vec![
        "/simple/".to_owned(),
        SerialUpstream::page_path(&name(7)),
        SerialUpstream::page_path(&name(42)),
        SerialUpstream::file_path(&new_release),
    ];
    // The new wheel's PEP 658 metadata is the only other request allowed
    // (a mirror may keep it beside the wheel).
    let metadata = SerialUpstream::metadata_path(&new_release);
    let extra = unexpected(&counts, &[expected.clone(), vec![metadata.clone()]].concat());
    assert!(
        extra.is_empty(),
        "the second run asked for more than the change: {extra:?}\nall requests:\n{}\n{}",
        upstream.describe(),
        second.describe()
    );
    for path in &expected {
        assert_eq!(counts.get(path), Some(&1), "{path} asked {:?} times\n{}", counts.get(path), upstream.describe());
    }
    assert!(counts.get(&metadata).copied().unwrap_or(0) <= 1, "{}", upstream.describe());
    assert!(stored_digests(data.path()).contains(&new_release.sha256), "new release not stored");
    assert!(
        second.stdout.contains("1 gone upstream"),
        "the summary should count the deleted project: {}",
        second.describe()
    );

    // --- third run: nothing changed, one request ---------------------
    upstream.reset();
    let third = mirror_all(&larder, data.path(), &upstream);
    third.assert_success();
    assert_eq!(upstream.total(), 1, "an unchanged index should cost one request (the list):\n{}", upstream.describe());
    assert_eq!(upstream.count("/simple/"), 1);

    // --- what larder serves offline ----------------------------------
    let server = larder.serve_with(data.path(), &["--offline"]);
    let (status, list) = offline_json(&server, "/simple/");
    assert_eq!(status, 200);
    let names: Vec<&str> =
        list["projects"].as_array().expect("projects").iter().map(|p| p["name"].as_str().expect("name")).collect();
    assert_eq!(names.len(), PROJECTS - 1, "offline list: {names:?}");
    assert!(!names.contains(&name(123).as_str()), "the deleted project is still listed");
    assert!(names.contains(&name(7).as_str()) && names.contains(&name(42).as_str()));

    let (status, _) = offline_json(&server, &format!("/simple/{}/", name(123)));
    assert_eq!(status, 404, "the deleted project's page should 404 offline");

    let (status, page) = offline_json(&server, &format!("/simple/{}/", name(42)));
    assert_eq!(status, 200);
    let file = &page["files"][0];
    assert_eq!(file["filename"], yanked.filename.as_str());
    assert_eq!(file["yanked"], "broken build", "the yank should show: {page}");

    let (status, page) = offline_json(&server, &format!("/simple/{}/", name(7)));
    assert_eq!(status, 200);
    let mut filenames: Vec<&str> =
        page["files"].as_array().expect("files").iter().map(|f| f["filename"].as_str().expect("filename")).collect();
    filenames.sort_unstable();
    assert_eq!(filenames, [wheels[7].filename.as_str(), new_release.filename.as_str()]);

    // The HTML list agrees.
    let html = server.get("/simple/").header("Accept", "text/html").send();
    assert_eq!(html.status, 200);
    let text = html.text();
    assert!(!text.contains(&format!("{}/", name(123))), "deleted project in the HTML list");
    assert!(text.contains(&format!("{}/", name(124))));
    drop(server);

    // --- the deleted project comes back upstream ---------------------
    upstream.add(&wheels[123]);
    upstream.reset();
    let fourth = mirror_all(&larder, data.path(), &upstream);
    fourth.assert_success();
    let counts = upstream.counts();
    let extra = unexpected(
        &counts,
        &[
            "/simple/".to_owned(),
            SerialUpstream::page_path(&name(123)),
            SerialUpstream::file_path(&wheels[123]),
            SerialUpstream::metadata_path(&wheels[123]),
        ],
    );
    assert!(extra.is_empty(), "{extra:?}\n{}", upstream.describe());
    assert_eq!(counts.get(&SerialUpstream::page_path(&name(123))), Some(&1), "{}", upstream.describe());
    let server = larder.serve_with(data.path(), &["--offline"]);
    let (status, page) = offline_json(&server, &format!("/simple/{}/", name(123)));
    assert_eq!(status, 200, "the project is back upstream and mirrored again");
    assert_eq!(page["files"][0]["filename"], wheels[123].filename.as_str());
}

/// The serials say what changed upstream, not what the last run kept:
/// after a run with `--keep-latest 1 --no-prereleases`, a run without
/// those filters must mirror the releases they left out, although no
/// project changed upstream.
#[test]
fn widening_the_filters_takes_effect_on_the_next_all_run() {
    let larder = larder();
    let fixtures = temp_dir("mirror-all-filters-fx");
    let data = temp_dir("mirror-all-filters-data");
    let upstream = SerialUpstream::start();
    let d = fixtures.path();
    let old = Wheel::new("flt-a", "1.0").build(d);
    let new = Wheel::new("flt-a", "2.0").build(d);
    let fin = Wheel::new("flt-b", "1.0").build(d);
    let pre = Wheel::new("flt-b", "2.0b1").build(d);
    upstream.add_all(&[old.clone(), new.clone(), fin.clone(), pre.clone()]);

    let mut cmd = larder.command();
    cmd.arg("mirror").arg("--data-dir").arg(data.path()).args([
        "--upstream",
        &upstream.simple_url(),
        "--all",
        "--keep-latest",
        "1",
        "--no-prereleases",
        "--quiet",
    ]);
    run_larder(&mut cmd).assert_success();
    let stored = stored_digests(data.path());
    assert!(stored.contains(&new.sha256) && stored.contains(&fin.sha256));
    assert!(!stored.contains(&old.sha256) && !stored.contains(&pre.sha256), "the filters were not applied");

    let widened = mirror_all(&larder, data.path(), &upstream);
    widened.assert_success();
    let stored = stored_digests(data.path());
    let left_out: Vec<&str> =
        [&old, &pre].into_iter().filter(|f| !stored.contains(&f.sha256)).map(|f| f.filename.as_str()).collect();
    assert!(
        left_out.is_empty(),
        "after the filters were widened, --all still leaves out {left_out:?}: projects whose \
         upstream serial did not change are skipped although the previous run kept less of them\n{}\nrequests:\n{}",
        widened.describe(),
        upstream.describe()
    );
}

/// A project is marked done (its serial recorded) only when every file it
/// needs is stored: after a failed download the next run tries again,
/// although nothing changed upstream.
#[test]
fn a_failed_download_is_tried_again_by_the_next_run() {
    let larder = larder();
    let fixtures = temp_dir("mirror-all-retry-fx");
    let data = temp_dir("mirror-all-retry-data");
    let upstream = SerialUpstream::start();
    let good = Wheel::new("retry-a", "1.0").build(fixtures.path());
    let bad = Wheel::new("retry-b", "1.0").build(fixtures.path());
    upstream.add_all(&[good.clone(), bad.clone()]);
    upstream.set_corrupt(&bad.filename, true);

    let failed = mirror_all(&larder, data.path(), &upstream);
    assert_eq!(failed.code(), Some(1), "a failed download must fail the run: {}", failed.describe());
    assert!(failed.stdout.contains(&bad.filename), "{}", failed.describe());
    let stored = stored_digests(data.path());
    assert!(stored.contains(&good.sha256) && !stored.contains(&bad.sha256));

    upstream.set_corrupt(&bad.filename, false);
    upstream.reset();
    let retried = mirror_all(&larder, data.path(), &upstream);
    retried.assert_success();
    assert!(stored_digests(data.path()).contains(&bad.sha256), "{}", retried.describe());
    let extra = unexpected(
        &upstream.counts(),
        &[
            "/simple/".to_owned(),
            SerialUpstream::page_path("retry-b"),
            SerialUpstream::file_path(&bad),
            SerialUpstream::metadata_path(&bad),
        ],
    );
    assert!(extra.is_empty(), "the complete project was fetched again: {extra:?}\n{}", upstream.describe());
}

/// A small file is received in memory and a big one (over a MiB) streamed
/// to disk; either way it is stored with the core metadata read from it,
/// and a file whose bytes do not match its page is stored by neither way.
#[test]
fn small_and_big_wheels_are_stored_with_their_metadata_and_checked() {
    let larder = larder();
    let fixtures = temp_dir("mirror-all-sizes-fx");
    let data = temp_dir("mirror-all-sizes-data");
    let upstream = SerialUpstream::start();
    let big_payload = larder_testkit::proxy::incompressible(1_500_000, 7);
    let small = Wheel::new("sizes-small", "1.0").build(fixtures.path());
    let big = Wheel::new("sizes-big", "1.0").extra_file("payload.bin", &big_payload).build(fixtures.path());
    let small_bad = Wheel::new("sizes-small-bad", "1.0").build(fixtures.path());
    let big_bad = Wheel::new("sizes-big-bad", "1.0").extra_file("payload.bin", &big_payload).build(fixtures.path());
    assert!(small.size < 1024 * 1024 && big.size > 1024 * 1024, "{} {}", small.size, big.size);
    upstream.add_all(&[small.clone(), big.clone(), small_bad.clone(), big_bad.clone()]);
    upstream.set_corrupt(&small_bad.filename, true);
    upstream.set_corrupt(&big_bad.filename, true);

    let outcome = mirror_all(&larder, data.path(), &upstream);
    assert_eq!(outcome.code(), Some(1), "the corrupt files fail the run: {}", outcome.describe());
    let stored = stored_digests(data.path());
    for wheel in [&small, &big] {
        let metadata = larder_testkit::sha256_hex(wheel.metadata.as_deref().expect("a wheel's METADATA"));
        assert!(stored.contains(&wheel.sha256), "{} not stored: {}", wheel.filename, outcome.describe());
        assert!(stored.contains(&metadata), "the metadata of {} not stored: {}", wheel.filename, outcome.describe());
    }
    for wheel in [&small_bad, &big_bad] {
        assert!(outcome.stdout.contains(&wheel.filename), "{} not named: {}", wheel.filename, outcome.describe());
        assert!(!stored.contains(&wheel.sha256), "{} stored", wheel.filename);
    }
    assert_eq!(stored.len(), 4, "only the good wheels and their metadata: {stored:?}");
}
