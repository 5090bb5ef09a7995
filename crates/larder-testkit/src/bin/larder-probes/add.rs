//! `larder add` given what a hostile or careless publisher hands over:
//! wheels pip refuses, a FIFO in the folder, and an add refused after its
//! blobs were written (are they left behind until `gc`?).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use larder_testkit::mirror::stored_digests;
use larder_testkit::{Wheel, temp_dir};

use crate::Ctx;
use crate::report::{Row, secs, tail};

/// Runs the three probes.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    vec![wheels_pip_refuses(ctx), fifo(ctx), orphans(ctx)]
}

fn wheels_pip_refuses(ctx: &Ctx) -> Row {
    let fx = temp_dir("probe-hostile-fx");
    let data = temp_dir("probe-hostile-data");
    // Its METADATA names it right; its .dist-info is another project's.
    let other_dist_info = Wheel::new("hostile-other", "1.0").metadata_name_field("hostile-one").build(fx.path());
    let misnamed = fx.path().join("hostile_one-1.0-py3-none-any.whl");
    std::fs::rename(&other_dist_info.path, &misnamed).expect("rename the wheel");
    let two_dist_infos = Wheel::new("hostile-two", "1.0")
        .extra_file("hostile_else-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: hostile-else\nVersion: 1.0\n")
        .build(fx.path());
    let outcomes: Vec<(bool, String)> = [misnamed, two_dist_infos.path]
        .iter()
        .map(|path| {
            let out = ctx.larder.add(data.path(), &[path]);
            (out.status.success(), tail(out.stderr.lines().last().unwrap_or_default()))
        })
        .collect();
    Row::new(
        "add: .dist-info of another project; two .dist-info",
        "both refused",
        outcomes
            .iter()
            .map(|(ok, says)| if *ok { "ACCEPTED".to_owned() } else { format!("refused ({says})") })
            .collect::<Vec<_>>()
            .join("; "),
        outcomes.iter().all(|(ok, _)| !ok),
    )
}

fn fifo(ctx: &Ctx) -> Row {
    let fx = temp_dir("probe-fifo-fx");
    let data = temp_dir("probe-fifo-data");
    Wheel::new("fifo-lib", "1.0").build(fx.path());
    let made = std::process::Command::new("mkfifo").arg(fx.path().join("pipe.whl")).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let process = ctx.larder.spawn_add(data.path(), &[fx.path()]);
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || done.send(process.wait()));
    let observed = match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => (
            format!("exit {} after {}", out.status.code().unwrap_or(-1), secs(started.elapsed())),
            out.status.success(),
        ),
        Err(_) => ("still running after 30 s (hangs)".to_owned(), false),
    };
    if observed.1 {
        drop(waiter.join());
    }
    Row::new("add: a folder holding a FIFO", "finishes at once, exit 0 (FIFO skipped)", observed.0, observed.1)
}

fn orphans(ctx: &Ctx) -> Row {
    let fx = temp_dir("probe-orphans-fx");
    let data = temp_dir("probe-orphans-data");
    let original = Wheel::new("orphan-lib", "1.0").build(&fx.path().join("a"));
    ctx.larder.add(data.path(), &[&original.path]).assert_success();
    let before = stored_digests(data.path());
    // Other bytes under a taken filename, with a new file beside it: the
    // add is refused after writing the new blobs.
    let impostor = Wheel::new("orphan-lib", "1.0").module_source("EVIL = 1\n").build(&fx.path().join("b"));
    let bystander = Wheel::new("orphan-bystander", "1.0").build(&fx.path().join("b"));
    let out = ctx.larder.add(data.path(), &[&impostor.path, &bystander.path]);
    let left = stored_digests(data.path()).difference(&before).count();
    Row::new(
        "add refused after writing blobs",
        "refused, 0 orphan blobs",
        format!("exit {}, {left} orphan blobs", out.status.code().unwrap_or(-1)),
        !out.status.success() && left == 0,
    )
}
