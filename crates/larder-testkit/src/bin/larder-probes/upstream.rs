//! An upstream that trickles a byte every 2 s, under `--upstream-timeout
//! 4s` (retries left at their default, 2): how long until a page is
//! answered from the stored copy, from the fallback upstream, or refused,
//! and how long a file download from it is held.

use std::time::{Duration, Instant};

use larder_testkit::{Fault, FixtureUpstream, Server, UpstreamFormat, Wheel, get_lenient, temp_dir};

use crate::Ctx;
use crate::pages::{JSON, file_url, target};
use crate::report::{Row, secs};

const TRICKLE: Fault = Fault::Trickle(Duration::from_secs(2));
/// Three attempts of 4 s each, plus the backoff between them and slack.
const BOUND: Duration = Duration::from_secs(16);

/// Runs the four cases.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let fx = temp_dir("probe-trickle-fx");
    let files = [Wheel::new("slow-lib", "1.0").extra_file("payload.bin", &[1u8; 100_000]).build(fx.path())];
    let first = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let second = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let serve = |upstreams: &[&FixtureUpstream]| {
        let data = temp_dir("probe-trickle-data");
        let mut args = vec!["--upstream-timeout".to_owned(), "4s".into(), "--page-ttl".into(), "0s".into()];
        for u in upstreams {
            args.extend(["--upstream".to_owned(), u.simple_url()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (ctx.larder.serve_with(data.path(), &args), data)
    };
    let mut rows = Vec::new();

    let (server, _data) = serve(&[&first]);
    let url = file_url(&server, "slow-lib", &files[0].filename).expect("listed while healthy");
    // A new release: the page changed, so revalidating it gets a whole
    // body (trickled), not a bodiless 304.
    first.add(&Wheel::new("slow-lib", "2.0").build(fx.path()));
    first.set_fault(Some(TRICKLE));
    let (status, cache, took) = page(&server);
    rows.push(Row::new(
        "trickling upstream: stored page (TTL over)",
        "200 stale within 3 x 4 s",
        format!("{status} ({cache}) after {}", secs(took)),
        status == 200 && took <= BOUND,
    ));
    let started = Instant::now();
    let got = get_lenient(server.addr(), &target(&url), &[]);
    let took = started.elapsed();
    let whole = got.as_ref().is_ok_and(|r| r.complete && r.sha256() == files[0].sha256);
    let wrong = got.as_ref().is_ok_and(|r| r.complete && r.status == 200 && !whole);
    rows.push(Row::new(
        "trickling upstream: a cold 100 kB file",
        "refused or cut within 3 x 4 s; never wrong",
        format!(
            "{} after {}",
            got.map_or_else(
                |e| format!("no answer ({e})"),
                |r| format!("{}{}", r.status, if r.complete { "" } else { " cut" })
            ),
            secs(took)
        ),
        !wrong && took <= BOUND,
    ));
    drop(server);

    let (server, _data) = serve(&[&first]);
    let (status, cache, took) = page(&server);
    rows.push(Row::new(
        "trickling upstream: cold page, no fallback",
        "5xx within 3 x 4 s",
        format!("{status} ({cache}) after {}", secs(took)),
        status >= 500 && took <= BOUND,
    ));
    drop(server);

    let (server, _data) = serve(&[&first, &second]);
    let (status, cache, took) = page(&server);
    rows.push(Row::new(
        "trickling upstream: cold page, a fallback",
        "200 from the fallback within 3 x 4 s",
        format!("{status} ({cache}) after {}; was ~19 min", secs(took)),
        status == 200 && took <= BOUND,
    ));
    rows
}

/// GETs the project page: status, `X-Larder-Cache`, and how long it took.
fn page(server: &Server) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = get_lenient(server.addr(), "/simple/slow-lib/", &[("Accept", JSON)]);
    let took = started.elapsed();
    match r {
        Ok(r) => (r.status, r.header("x-larder-cache").unwrap_or("-").to_owned(), took),
        Err(e) => (0, e, took),
    }
}
