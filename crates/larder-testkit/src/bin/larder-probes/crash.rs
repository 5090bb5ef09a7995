//! kill -9 of `serve` (downloads in flight), `mirror` and `import` at
//! random points, round after round on one data dir; then what `verify`
//! finds, and whether every file is served whole once the work is redone.

use std::path::Path;
use std::time::{Duration, Instant};

use larder_testkit::mirror::{ChildGuard, run_larder};
use larder_testkit::proxy::incompressible;
use larder_testkit::{Built, FixtureUpstream, UpstreamFormat, Wheel, get_lenient, sha256_hex, temp_dir};

use crate::Ctx;
use crate::pages::{file_url, listed, target};
use crate::report::Row;

/// How long after `serve` starts its downloads it may be killed.
const SERVE_SPAN: Duration = Duration::from_millis(400);
/// How long the upstream holds each new release's download half way, so
/// a mirror run is killed mid-download.
const MIRROR_HOLD: Duration = Duration::from_millis(500);

/// The verify lines that mean damage.
const DAMAGE: [&str; 2] = ["corrupt: ", "missing: "];

/// Runs the loop and reports kills, damage and files served whole.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let seed = clock_seed();
    // Kill points: a random fraction of each command's usual run time.
    let mut fractions = incompressible(3 * ctx.crash_rounds, seed).into_iter().map(|b| f64::from(b) / 256.0);
    let fx = temp_dir("probe-crash-fx");
    let wheel = |project: &str, version: &str, i: u64| {
        Wheel::new(project, version).extra_file("payload.bin", &incompressible(1_500_000, seed + i)).build(fx.path())
    };
    let mut files: Vec<Built> = [("crash-a", "1.0"), ("crash-a", "2.0"), ("crash-b", "1.0"), ("crash-b", "1.1")]
        .into_iter()
        .zip(1..)
        .map(|((project, version), i)| wheel(project, version, i))
        .collect();
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let url = upstream.simple_url();
    let mirror = ["--upstream", &url, "--project", "crash-a", "--project", "crash-b", "--quiet"];
    let source = temp_dir("probe-crash-source");
    let larder = |command: &str, data: &Path, rest: &[&str]| {
        let mut cmd = ctx.larder.command();
        cmd.arg(command).arg("--data-dir").arg(data).args(rest);
        cmd
    };
    run_larder(&mut larder("mirror", source.path(), &mirror)).assert_success();
    let bundle = source.path().join("crash.tar");
    let bundle_arg = [bundle.to_str().expect("UTF-8 path")];
    run_larder(&mut larder("export", source.path(), &["--bundle", bundle_arg[0]])).assert_success();
    // Imports after the first find every blob stored and only check them:
    // time one such, into a scratch data dir.
    let scratch = temp_dir("probe-crash-scratch");
    run_larder(&mut larder("import", scratch.path(), &bundle_arg)).assert_success();
    let started = Instant::now();
    run_larder(&mut larder("import", scratch.path(), &bundle_arg)).assert_success();
    // How long serving downloads, a mirror run (its new download held) and
    // an import take, about.
    let spans = [SERVE_SPAN, MIRROR_HOLD + Duration::from_millis(100), started.elapsed()];

    let data = temp_dir("probe-crash-data");
    let mut kills = [0usize; 3];
    for round in 0..ctx.crash_rounds {
        // A new release each round, so the mirror has downloads to be
        // killed in.
        let released = wheel(["crash-a", "crash-b"][round % 2], &format!("3.{round}"), 100 + round as u64);
        upstream.add(&released);
        upstream.hold_file(&released.filename, MIRROR_HOLD);
        files.push(released);
        let server = ctx.larder.serve_with(data.path(), &["--upstream", &url]);
        let targets: Vec<String> = files[..4]
            .iter()
            .filter_map(|f| file_url(&server, &f.project, &f.filename).ok())
            .map(|u| target(&u))
            .collect();
        let addr = server.addr();
        let clients: Vec<_> =
            targets.into_iter().map(|t| std::thread::spawn(move || drop(get_lenient(addr, &t, &[])))).collect();
        std::thread::sleep(spans[0].mul_f64(fractions.next().unwrap_or_default()));
        drop(server);
        kills[0] += 1;
        clients.into_iter().for_each(|c| drop(c.join()));
        for (i, (command, rest)) in [("mirror", &mirror[..]), ("import", &bundle_arg[..])].into_iter().enumerate() {
            let mut child = ChildGuard::spawn(larder(command, data.path(), rest));
            std::thread::sleep(spans[i + 1].mul_f64(fractions.next().unwrap_or_default()));
            if child.is_running() {
                child.kill();
                kills[i + 1] += 1;
            } else {
                child.wait();
            }
        }
    }
    let verify = run_larder(&mut larder("verify", data.path(), &[]));
    let damaged = verify.stdout.lines().filter(|l| DAMAGE.iter().any(|d| l.starts_with(d))).count();
    let unextracted = verify.stdout.lines().filter(|l| l.starts_with("no core metadata: ")).count();
    let repaired = run_larder(&mut larder("verify", data.path(), &["--repair"]));

    // The interrupted work redone, every file must be served whole.
    let redo = [
        run_larder(&mut larder("import", data.path(), &bundle_arg)),
        run_larder(&mut larder("mirror", data.path(), &mirror)),
    ];
    let server = ctx.larder.serve_with(data.path(), &["--offline"]);
    let whole = files
        .iter()
        .filter(|f| {
            let listed = listed(&server, &f.project).unwrap_or_default();
            listed.iter().find(|(name, _)| *name == f.filename).is_some_and(|(_, url)| {
                let r = server.get_url(url).send();
                r.status == 200 && sha256_hex(&r.body) == f.sha256
            })
        })
        .count();
    drop(server);
    let after = run_larder(&mut larder("verify", data.path(), &[]));
    let redo_ok = redo.iter().all(|o| o.status.success());
    vec![
        Row::new(
            "kill -9 serve / mirror / import",
            "0 corrupt, 0 missing in verify",
            format!(
                "{} rounds: {} serve, {} mirror, {} import kills; verify: {damaged} corrupt or missing, {unextracted} wheels without metadata (repair exit {})",
                ctx.crash_rounds,
                kills[0],
                kills[1],
                kills[2],
                repaired.code().unwrap_or(-1)
            ),
            damaged == 0 && repaired.status.success(),
        ),
        Row::new(
            "after the kills: redo, serve offline",
            "every file served whole; verify sound",
            format!(
                "import+mirror {}; {whole}/{} files whole; verify after: {}",
                if redo_ok { "exit 0" } else { "FAILED" },
                files.len(),
                after.stdout.lines().last().unwrap_or_default()
            ),
            redo_ok && whole == files.len() && after.status.success(),
        ),
    ]
}

/// A seed from the clock, printed so a run can be told apart.
fn clock_seed() -> u64 {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    eprintln!("larder-probes: crash seed {seed}");
    seed
}
