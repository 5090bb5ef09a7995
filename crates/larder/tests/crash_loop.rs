//! A bounded crash loop: `larder serve` (with downloads in flight),
//! `larder mirror` and `larder import` killed with SIGKILL at random
//! points, round after round, on one data dir; then `verify` finds nothing
//! corrupt or lost (a wheel whose metadata extraction a kill cut short is
//! reported, and `verify --repair` extracts it), and everything installs:
//! each file downloads whole with its digest. The seed is printed, and
//! `LARDER_CRASH_SEED` / `LARDER_CRASH_ROUNDS` replay or lengthen a run
//! (bench/ runs a longer loop).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use larder_testkit::mirror::{ChildGuard, run_larder};

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.next() % max)
    }
}

/// Wheels with a payload large enough that a kill lands mid-download.
fn fixtures(dir: &Path, rng: &mut Rng) -> Vec<Built> {
    let mut files = Vec::new();
    for (project, version) in [("crash-a", "1.0"), ("crash-a", "2.0"), ("crash-b", "1.0"), ("crash-b", "1.1")] {
        let payload: Vec<u8> = (0..1_500_000).map(|_| rng.next() as u8).collect();
        files.push(Wheel::new(project, version).extra_file("payload.bin", &payload).build(dir));
    }
    files
}

fn larder_command(args: &[&str], data: &Path, rest: &[&str]) -> std::process::Command {
    let mut cmd = larder().command();
    cmd.args(args).arg("--data-dir").arg(data).args(rest);
    cmd
}

fn mirror_args(upstream: &FixtureUpstream) -> Vec<String> {
    ["--upstream", &upstream.simple_url(), "--project", "crash-a", "--project", "crash-b", "--quiet"]
        .map(str::to_owned)
        .to_vec()
}

/// Runs `verify`; a store a kill left with wheels lacking metadata is
/// repaired. Anything corrupt or lost fails the test.
fn assert_sound(data: &Path) {
    let report = run_larder(&mut larder_command(&["verify"], data, &[]));
    assert!(!report.stdout.contains("corrupt:") && !report.stdout.contains("missing:"), "{}", report.stdout);
    if !report.status.success() {
        assert!(report.stdout.contains("no core metadata:"), "{}\n{}", report.stdout, report.stderr);
        let repaired = run_larder(&mut larder_command(&["verify"], data, &["--repair"]));
        assert!(repaired.status.success(), "{}\n{}", repaired.stdout, repaired.stderr);
    }
    let after = run_larder(&mut larder_command(&["verify"], data, &[]));
    assert!(after.status.success() && after.stdout.contains("sound"), "{}\n{}", after.stdout, after.stderr);
}

#[test]
fn kill_9_of_serve_mirror_and_import_at_random_points_loses_and_corrupts_nothing() {
    let seed = std::env::var("LARDER_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let rounds: usize = std::env::var("LARDER_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    eprintln!("crash loop: LARDER_CRASH_SEED={seed} LARDER_CRASH_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let fx = temp_dir("crash-fx");
    let files = fixtures(fx.path(), &mut rng);
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let mirror = mirror_args(&upstream);
    let mirror: Vec<&str> = mirror.iter().map(String::as_str).collect();

    // The bundle to import, made from a store mirrored in full.
    let source = temp_dir("crash-source");
    let mirrored = run_larder(&mut larder_command(&["mirror"], source.path(), &mirror));
    assert!(mirrored.status.success(), "{}", mirrored.stderr);
    let bundle = source.path().join("crash.tar");
    let exported = run_larder(&mut larder_command(&["export"], source.path(), &["--bundle", bundle.to_str().unwrap()]));
    assert!(exported.status.success(), "{}", exported.stderr);

    let data = temp_dir("crash-data");
    let bundle_arg = [bundle.to_str().unwrap()];
    for _ in 0..rounds {
        // serve, with every file being downloaded.
        let url = upstream.simple_url();
        let server = larder().serve_with(data.path(), &["--upstream", &url]);
        let urls: Vec<(std::net::SocketAddr, String)> = files
            .iter()
            .map(|f| {
                let page = json_page(&server, &f.project);
                let url = resolve(
                    &server.url(&format!("/simple/{}/", f.project)),
                    json_file(&page, &f.filename)["url"].as_str().unwrap(),
                );
                (server.addr(), target_of(&url))
            })
            .collect();
        let clients: Vec<_> = urls
            .into_iter()
            .map(|(addr, target)| std::thread::spawn(move || drop(get_lenient(addr, &target, &[]))))
            .collect();
        std::thread::sleep(rng.millis(400));
        drop(server);
        for client in clients {
            let _ = client.join();
        }
        // mirror, then import, each killed at a random point.
        for (command, rest) in [("mirror", &mirror[..]), ("import", &bundle_arg[..])] {
            let mut child = ChildGuard::spawn(larder_command(&[command], data.path(), rest));
            std::thread::sleep(rng.millis(400));
            if child.is_running() {
                child.kill();
            } else {
                child.wait();
            }
        }
    }
    assert_sound(data.path());

    // Everything completes afterwards, and every file is served whole.
    let imported = run_larder(&mut larder_command(&["import"], data.path(), &bundle_arg));
    assert!(imported.status.success(), "{}", imported.stderr);
    let mirrored = run_larder(&mut larder_command(&["mirror"], data.path(), &mirror));
    assert!(mirrored.status.success(), "{}", mirrored.stderr);
    let server = larder().serve_with(data.path(), &["--offline"]);
    for built in &files {
        let r = server.get_url(&file_url(&server, &built.project, &built.filename)).send();
        r.assert_status(200);
        assert_eq!(sha256_hex(&r.body), built.sha256, "{}", built.filename);
    }
    drop(server);
    assert_sound(data.path());
}
