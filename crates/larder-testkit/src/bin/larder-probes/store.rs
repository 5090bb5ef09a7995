//! What is stored stays whole and reachable: wheels left without core
//! metadata by a crash (what `verify` says, what `--repair` does, what an
//! offline page offers), and an upstream page that lists none of the
//! stored files.

use std::path::Path;

use larder_testkit::mirror::{Outcome, forget_core_metadata, run_larder};
use larder_testkit::{FixtureUpstream, UpstreamFormat, Wheel, temp_dir};

use crate::Ctx;
use crate::pages::{JSON, listed};
use crate::report::{Row, tail};

/// Runs both probes.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    vec![metadata_lost_in_a_crash(ctx), a_page_listing_none_of_the_stored_files(ctx)]
}

fn metadata_lost_in_a_crash(ctx: &Ctx) -> Row {
    let fx = temp_dir("probe-metadata-fx");
    let data = temp_dir("probe-metadata-data");
    let wheels = [Wheel::new("meta-lib", "1.0").build(fx.path()), Wheel::new("meta-lib", "2.0").build(fx.path())];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &wheels);
    upstream.set_serve_metadata(false);
    let larder = |command: &str, extra: &[&str]| -> Outcome {
        run_larder(ctx.larder.command().arg(command).arg("--data-dir").arg(data.path()).args(extra))
    };
    larder("mirror", &["--upstream", &upstream.simple_url(), "--project", "meta-lib", "--quiet"]).assert_success();
    drop(upstream);
    forget_core_metadata(data.path(), &wheels);
    let verify = |extra: &[&str]| larder("verify", extra);
    let before = verify(&[]);
    let reported = before.stdout.lines().filter(|l| l.starts_with("no core metadata: ")).count();
    let offered = offered_metadata(ctx, data.path());
    let repaired = verify(&["--repair"]);
    let after = verify(&[]);
    Row::new(
        "2 mirrored wheels left without METADATA",
        "verify reports 2, exit 1; offline page re-extracts; --repair extracts",
        format!(
            "verify: {reported} reported, exit {}; offline page offers core-metadata for {offered}/2; repair: {}, exit {}; after: {}",
            before.code().unwrap_or(-1),
            tail(repaired.stdout.lines().last().unwrap_or_default()),
            repaired.code().unwrap_or(-1),
            after.stdout.lines().last().unwrap_or_default()
        ),
        reported == 2
            && before.code() == Some(1)
            && offered == 2
            && repaired.status.success()
            && after.status.success(),
    )
}

/// How many files `meta-lib`'s page offers `core-metadata` for, served
/// offline from `data` (run before the repair: the page extracts lazily).
fn offered_metadata(ctx: &Ctx, data: &Path) -> usize {
    let data = temp_copy(data);
    let server = ctx.larder.serve_with(data.path(), &["--offline"]);
    let page = server.get("/simple/meta-lib/").header("Accept", JSON).send();
    page.json()["files"].as_array().map_or(0, |files| files.iter().filter(|f| f["core-metadata"].is_object()).count())
}

/// A copy of a data dir, so a server's lazy repair does not hide what
/// `verify` must find in the original.
fn temp_copy(data: &Path) -> tempfile::TempDir {
    let copy = temp_dir("probe-metadata-copy");
    let status =
        std::process::Command::new("cp").arg("-a").arg(format!("{}/.", data.display())).arg(copy.path()).status();
    assert!(status.is_ok_and(|s| s.success()), "copying the data dir failed");
    copy
}

fn a_page_listing_none_of_the_stored_files(ctx: &Ctx) -> Row {
    let fx = temp_dir("probe-relist-fx");
    let data = temp_dir("probe-relist-data");
    let old = [Wheel::new("relist-lib", "1.0").build(fx.path()), Wheel::new("relist-lib", "2.0").build(fx.path())];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &old);
    let server = ctx.larder.serve_with(data.path(), &["--upstream", &upstream.simple_url(), "--page-ttl", "0s"]);
    let stored: Vec<&str> = old.iter().map(|w| w.filename.as_str()).collect();
    let fetched = listed(&server, "relist-lib")
        .unwrap_or_default()
        .iter()
        .filter(|(_, url)| server.get_url(url).send().status == 200)
        .count();
    for built in &old {
        upstream.remove_file(&built.filename);
    }
    let new = Wheel::new("relist-lib", "3.0").build(fx.path());
    upstream.add(&new);
    let now = listed(&server, "relist-lib").unwrap_or_default();
    let still = now
        .iter()
        .filter(|(name, url)| stored.contains(&name.as_str()) && server.get_url(url).send().status == 200)
        .count();
    let new_listed = now.iter().any(|(name, _)| *name == new.filename);
    Row::new(
        "upstream page lists none of 2 stored files",
        "stored files stay listed and served; the new one listed",
        format!("{fetched} stored; after: {still}/2 listed and served, new one listed: {new_listed}"),
        fetched == 2 && still == 2 && new_listed,
    )
}
