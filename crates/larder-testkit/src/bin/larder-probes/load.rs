//! Two `larder serve` sharing one data dir under 64 connections (wrk, 32
//! on each: a page on one, a wheel on the other) while `larder mirror` and
//! `larder add` write into that data dir: requests/s and errors.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use larder_testkit::mirror::run_larder;
use larder_testkit::{FixtureUpstream, UpstreamFormat, Wheel, temp_dir};

use crate::Ctx;
use crate::pages::{JSON, file_url};
use crate::report::Row;

/// How long wrk runs.
const SECONDS: u32 = 10;

/// What one wrk run counted.
#[derive(Default)]
struct WrkCount {
    requests_per_s: f64,
    errors: u64,
}

/// Runs the load and reports it.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let probe = "2 servers, 1 data dir, 64 conns, mirror+add writing";
    if Command::new("wrk").arg("--version").output().is_err() {
        return vec![Row::new(probe, "0 errors", "n/a: wrk not installed".into(), false)];
    }
    let fx = temp_dir("probe-load-fx");
    let data = temp_dir("probe-load-data");
    let served = Wheel::new("load-lib", "1.0").extra_file("payload.bin", &[7u8; 200_000]).build(fx.path());
    ctx.larder.add(data.path(), &[&served.path]).assert_success();
    let mirrored: Vec<_> = (0..20)
        .map(|i| Wheel::new(&format!("load-mirrored-{}", i % 5), &format!("1.{i}")).build(&fx.path().join("up")))
        .collect();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &mirrored);
    let servers = [ctx.larder.serve(data.path()), ctx.larder.serve(data.path())];
    let page = servers[0].url("/simple/load-lib/");
    let wheel = file_url(&servers[1], "load-lib", &served.filename).expect("the added wheel is listed");

    let stop = AtomicBool::new(false);
    let (counts, writes) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let url = upstream.simple_url();
            let mut mirror = ctx.larder.command();
            mirror.arg("mirror").arg("--data-dir").arg(data.path()).args(["--upstream", &url, "--quiet"]);
            for i in 0..5 {
                mirror.args(["--project", &format!("load-mirrored-{i}")]);
            }
            let mut ok = usize::from(run_larder(&mut mirror).status.success());
            let mut total = 1;
            while !stop.load(Ordering::Relaxed) {
                let added = Wheel::new("load-added", &format!("1.{total}")).build(&fx.path().join("added"));
                ok += usize::from(ctx.larder.add(data.path(), &[&added.path]).status.success());
                total += 1;
            }
            (ok, total)
        });
        let runs = [
            scope.spawn(|| wrk(page.as_str(), &["-H", &format!("Accept: {JSON}")])),
            scope.spawn(|| wrk(wheel.as_str(), &[])),
        ];
        let counts: Vec<WrkCount> = runs.map(|r| r.join().expect("wrk thread")).into_iter().collect();
        stop.store(true, Ordering::Relaxed);
        (counts, writer.join().expect("writer thread"))
    });
    let rate: f64 = counts.iter().map(|c| c.requests_per_s).sum();
    let errors: u64 = counts.iter().map(|c| c.errors).sum();
    vec![Row::new(
        probe,
        "0 errors, every write succeeds",
        format!(
            "{rate:.0} req/s (page {:.0} + wheel {:.0}), {errors} errors; {}/{} mirror+add runs exit 0",
            counts[0].requests_per_s, counts[1].requests_per_s, writes.0, writes.1
        ),
        errors == 0 && writes.0 == writes.1,
    )]
}

/// `wrk -t1 -c32 -d10s URL`: its rate, and its non-2xx answers plus socket
/// errors.
fn wrk(url: &str, extra: &[&str]) -> WrkCount {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{SECONDS}s"), "--timeout", "5s"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut count = WrkCount::default();
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            count.requests_per_s = rate.trim().parse().unwrap_or(0.0);
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            count.errors += n.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(socket) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            count.errors +=
                socket.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        }
    }
    count
}
