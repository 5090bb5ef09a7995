//! `larder-probes --larder-bin PATH [--only GROUP,...] [--crash-rounds N]`:
//! the reliability and security probes of issue 13, run against a given
//! `larder` binary with every server on 127.0.0.1, printed as one table:
//! probe, expected, observed (seconds, counts, status codes, req/s).
//! `bench/probes` builds and runs it.
//!
//! Groups, in the order they run: `crash`, `load`, `input`, `clients`,
//! `upstream`, `disk`, `store`, `bundles`, `add`.

mod add;
mod bundles;
mod clients;
mod crash;
mod disk;
mod input;
mod load;
mod pages;
mod report;
mod store;
mod upstream;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use larder_testkit::Larder;

use report::Row;

/// What every probe gets: the binary under test and the options.
pub struct Ctx {
    /// The `larder` binary under test.
    pub larder: Larder,
    /// Rounds of the crash loop (each kills serve, mirror and import once).
    pub crash_rounds: usize,
}

/// A probe group: its name and the function that runs it.
type Group = (&'static str, fn(&Ctx) -> Vec<Row>);

const GROUPS: &[Group] = &[
    ("crash", crash::run),
    ("load", load::run),
    ("input", input::run),
    ("clients", clients::run),
    ("upstream", upstream::run),
    ("disk", disk::run),
    ("store", store::run),
    ("bundles", bundles::run),
    ("add", add::run),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut bin = None;
    let mut only: Option<Vec<String>> = None;
    let mut crash_rounds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--larder-bin" => bin = Some(value),
            "--only" => only = Some(value.split(',').map(str::to_owned).collect()),
            "--crash-rounds" => crash_rounds = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let bin = bin.ok_or("--larder-bin PATH is required")?;
    raise_open_file_limit();
    let ctx = Ctx { larder: Larder::new(bin), crash_rounds };
    let started = Instant::now();
    let mut rows = Vec::new();
    for (name, probe) in GROUPS {
        if only.as_ref().is_some_and(|only| !only.iter().any(|o| o == name)) {
            continue;
        }
        eprintln!("larder-probes: {name}...");
        let group_started = Instant::now();
        match std::panic::catch_unwind(AssertUnwindSafe(|| probe(&ctx))) {
            Ok(group_rows) => rows.extend(group_rows),
            Err(panic) => rows.push(Row::broken(name, &panic)),
        }
        eprintln!("larder-probes: {name} took {:.0} s", group_started.elapsed().as_secs_f64());
    }
    print!("{}", report::table(&rows));
    let missed = rows.iter().filter(|r| !r.met).count();
    println!("{} probes, {missed} not as expected, {:.0} s", rows.len(), started.elapsed().as_secs_f64());
    if missed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The probes hold more than a thousand connections at once: take the
/// hard open-file limit.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("larder-probes: cannot raise the open-file limit: {e}");
    }
}
