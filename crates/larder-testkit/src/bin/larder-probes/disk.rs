//! A full disk during cold installs (the data dir on a 24 MiB tmpfs the
//! probe mounts): the status codes clients get, how long after space is
//! freed larder serves cold pages, files and metadata again, what `verify`
//! says; and below the free-space reserve, 507 for new work while stored
//! files are served.

use std::collections::BTreeMap;
use std::time::Duration;

use larder_testkit::mirror::run_larder;
use larder_testkit::proxy::incompressible;
use larder_testkit::{Built, FixtureUpstream, Server, SmallDisk, UpstreamFormat, Wheel, get_lenient, temp_dir};

use crate::Ctx;
use crate::pages::{JSON, file_url, target, time_until};
use crate::report::{Row, secs};

/// Projects fetched cold while the disk is full.
const COLD: [&str; 4] = ["disk-b", "disk-c", "disk-d", "disk-e"];

/// Runs the full disk, then the reserve.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let disk = SmallDisk::mount(24);
    let fx = temp_dir("probe-disk-fx");
    let files: Vec<Built> = ["disk-a"]
        .iter()
        .chain(&COLD)
        .zip(1..)
        .map(|(project, seed)| {
            Wheel::new(project, "1.0").extra_file("payload.bin", &incompressible(400_000, seed)).build(fx.path())
        })
        .collect();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_serve_metadata(false);
    let url = upstream.simple_url();
    let mut rows = Vec::new();

    let data = disk.path().join("full");
    let server = ctx.larder.serve_with(
        &data,
        &["--upstream", &url, "--page-ttl", "0s", "--upstream-timeout", "5s", "--min-free-space", "0"],
    );
    let warm = &files[0];
    let metadata_ready =
        fetch(&server, warm) == 200 && time_until(Duration::from_secs(10), || metadata(&server, warm) == 200).is_some();
    let filler = disk.fill();
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    for built in &files[1..] {
        *seen.entry(fetch(&server, built)).or_default() += 1;
    }
    let stored_served = fetch(&server, warm);
    filler.release();
    let recovered = time_until(Duration::from_secs(60), || {
        files[1..].iter().all(|f| fetch(&server, f) == 200 && metadata(&server, f) == 200)
    });
    let poisoned = server.stderr_text().contains("non-zero transaction depth");
    drop(server);
    let verify = run_larder(ctx.larder.command().args(["verify", "--data-dir"]).arg(&data));
    rows.push(Row::new(
        "disk filled during cold installs",
        "507 (disk full) or a cut body, never wrong bytes; stored file 200",
        format!("cold page+file: {}; stored file {stored_served}", codes(&seen)),
        metadata_ready && stored_served == 200 && seen.keys().all(|&s| matches!(s, 507 | CUT | 200)),
    ));
    rows.push(Row::new(
        "space freed: recovery, no restart",
        "cold pages, files, metadata 200 within seconds; verify sound",
        format!(
            "{}; poisoned connection logged: {}; verify: {}",
            recovered.map_or("not recovered in 60 s".to_owned(), |t| format!("all 200 after {}", secs(t))),
            if poisoned { "yes" } else { "no" },
            verify.stdout.lines().last().unwrap_or("(no output)")
        ),
        recovered.is_some() && !poisoned && verify.status.success(),
    ));

    let data = disk.path().join("reserve");
    let server = ctx.larder.serve_with(&data, &["--upstream", &url, "--page-ttl", "0s", "--min-free-space", "4M"]);
    let stored_before = fetch(&server, warm);
    let filler = disk.fill();
    std::thread::sleep(Duration::from_millis(1100));
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    for built in &files[1..] {
        *seen.entry(page(&server, &built.project)).or_default() += 1;
    }
    let stored = fetch(&server, warm);
    filler.release();
    rows.push(Row::new(
        "below the 4M reserve: cold work",
        "507 for every cold page; stored file 200",
        format!("cold pages: {}; stored file {stored} (before: {stored_before})", codes(&seen)),
        seen.keys().all(|&s| s == 507) && stored == 200,
    ));
    rows
}

/// What a client saw besides HTTP statuses.
const NO_ANSWER: u16 = 0;
const CUT: u16 = 1;
const WRONG_BYTES: u16 = 2;

/// Downloads `built` through larder (page, then file): the file's status,
/// the page's when it is not 200, or [`NO_ANSWER`], [`CUT`] (a body cut
/// short), [`WRONG_BYTES`] (a whole body that is not the file).
fn fetch(server: &Server, built: &Built) -> u16 {
    let status = page(server, &built.project);
    if status != 200 {
        return status;
    }
    let Ok(url) = file_url(server, &built.project, &built.filename) else { return NO_ANSWER };
    match get_lenient(server.addr(), &target(&url), &[]) {
        Ok(r) if r.status != 200 => r.status,
        Ok(r) if !r.complete => CUT,
        Ok(r) if r.sha256() == built.sha256 => 200,
        Ok(_) => WRONG_BYTES,
        Err(_) => NO_ANSWER,
    }
}

/// The status of `project`'s page (0: no answer).
fn page(server: &Server, project: &str) -> u16 {
    get_lenient(server.addr(), &format!("/simple/{project}/"), &[("Accept", JSON)]).map_or(0, |r| r.status)
}

/// The status of `built`'s `.metadata` (0: no answer).
fn metadata(server: &Server, built: &Built) -> u16 {
    let Ok(url) = file_url(server, &built.project, &built.filename) else { return 0 };
    get_lenient(server.addr(), &format!("{}.metadata", target(&url)), &[]).map_or(0, |r| r.status)
}

/// `{status: count}` as `507 x3, cut x1`.
fn codes(seen: &BTreeMap<u16, usize>) -> String {
    let label = |s: u16| match s {
        NO_ANSWER => "no answer".to_owned(),
        CUT => "cut".to_owned(),
        WRONG_BYTES => "WRONG BYTES".to_owned(),
        s => s.to_string(),
    };
    seen.iter().map(|(s, n)| format!("{} x{n}", label(*s))).collect::<Vec<_>>().join(", ")
}
