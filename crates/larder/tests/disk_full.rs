//! A full disk: below the free-space reserve larder refuses new upstream
//! work with 507 and keeps serving what it stored; when the disk really
//! fills, failed writes leave nothing behind and are answered 507 too, and
//! larder recovers by itself once space is back.
//!
//! The data dir sits on a small tmpfs the test mounts (needs root, as the
//! dev machine and CI run) and unmounts when done.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Longer than the proxy trusts one reading of the free space.
const RECHECK: Duration = Duration::from_millis(1100);

struct Setup {
    server: Server,
    upstream: FixtureUpstream,
    files: Vec<Built>,
    // Dropped last: the server goes before its disk.
    _fixtures: TempDir,
    disk: SmallDisk,
}

fn setup(label: &str, reserve: &str) -> Setup {
    let disk = SmallDisk::mount(24);
    let fixtures = temp_dir(label);
    let files = vec![
        Wheel::new("fixture-lib", "1.0").build(fixtures.path()),
        Wheel::new("fixture-lib", "2.0").build(fixtures.path()),
        Wheel::new("fixture-app", "1.0").requires_dist("fixture-lib>=1.0").build(fixtures.path()),
    ];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    upstream.set_serve_metadata(false);
    let data = disk.path().join("data");
    let url = upstream.simple_url();
    let server = larder().serve_with(
        &data,
        &["--upstream", &url, "--page-ttl", "0s", "--upstream-timeout", "5s", "--min-free-space", reserve],
    );
    Setup { server, upstream, files, _fixtures: fixtures, disk }
}

impl Setup {
    fn built(&self, filename_prefix: &str) -> &Built {
        self.files.iter().find(|f| f.filename.starts_with(filename_prefix)).expect("fixture exists")
    }

    fn download(&self, built: &Built) -> Response {
        self.server.get_url(&file_url(&self.server, &built.project, &built.filename)).send()
    }
}

fn data_dir_is_sound(data: &Path) {
    let output = larder().command().args(["verify", "--data-dir"]).arg(data).output().expect("run larder verify");
    assert!(output.status.success(), "verify: {}", describe_output(&output));
}

#[test]
fn below_the_reserve_new_work_is_refused_with_507_and_stored_content_served() {
    let s = setup("disk-reserve", "4M");
    let lib1 = s.built("fixture_lib-1.0");
    let lib2 = s.built("fixture_lib-2.0");
    s.download(lib1).assert_status(200);

    let filler = s.disk.fill();
    std::thread::sleep(RECHECK);
    s.upstream.reset_seen();

    let page = get(&s.server, "fixture-lib");
    page.assert_status(200);
    assert_eq!(page.header("x-larder-cache"), Some("stale"), "a stored page is served as is");
    let stored = s.download(lib1);
    stored.assert_status(200);
    assert_eq!(sha256_hex(&stored.body), lib1.sha256);

    let cold_file = s.download(lib2);
    cold_file.assert_status(507);
    assert!(cold_file.text().contains("reserve"), "one-line reason: {}", cold_file.text());
    let cold_page = get(&s.server, "fixture-app");
    cold_page.assert_status(507);
    assert_eq!(s.upstream.total(), 0, "nothing fetched below the reserve: {}", s.upstream.describe_seen());
    assert!(s.server.stderr_text().contains("below the reserve"), "the log says why");

    filler.release();
    std::thread::sleep(RECHECK);
    get(&s.server, "fixture-app").assert_status(200);
    let fetched = s.download(lib2);
    fetched.assert_status(200);
    assert_eq!(sha256_hex(&fetched.body), lib2.sha256);
}

#[test]
fn after_a_full_disk_larder_recovers_by_itself_once_space_is_back() {
    let s = setup("disk-full", "0");
    let lib1 = s.built("fixture_lib-1.0");
    let lib2 = s.built("fixture_lib-2.0");
    s.download(lib1).assert_status(200);
    // The wheel's METADATA is extracted just after its download ends: let
    // that finish first, so the disk fills on the cold work below and not
    // on this wheel's (the store must start sound for the check at the end).
    let lib1_metadata =
        Url::parse(&format!("{}.metadata", file_url(&s.server, &lib1.project, &lib1.filename))).unwrap();
    let settled = larder_testkit::proxy::eventually(Duration::from_secs(10), || {
        s.server.get_url(&lib1_metadata).send().status == 200
    });
    assert!(settled, "the first wheel's METADATA is served before the disk fills");

    let filler = s.disk.fill();
    // Cold work now fails somewhere (page row, blob, WAL): a 507 that says
    // the disk is full, never a stored wrong answer.
    let failed_page = get(&s.server, "fixture-app");
    failed_page.assert_status(507);
    assert!(failed_page.text().contains("disk is full"), "one-line reason: {}", failed_page.text());
    let lib2_url = file_url(&s.server, &lib2.project, &lib2.filename);
    if let Ok(failed_file) = get_lenient(s.server.addr(), &target_of(&lib2_url), &[])
        && failed_file.status == 200
        && failed_file.complete
    {
        assert_eq!(sha256_hex(&failed_file.body), lib2.sha256, "a whole body is the right one");
    }
    let stored = s.download(lib1);
    stored.assert_status(200);

    filler.release();
    for project in ["fixture-app", "fixture-lib"] {
        let page = get(&s.server, project);
        page.assert_status(200);
    }
    let fetched = s.download(lib2);
    fetched.assert_status(200);
    assert_eq!(sha256_hex(&fetched.body), lib2.sha256);
    let app = s.built("fixture_app-1.0");
    s.download(app).assert_status(200);
    let metadata_url = Url::parse(&format!("{}.metadata", file_url(&s.server, &app.project, &app.filename))).unwrap();
    let extracted = larder_testkit::proxy::eventually(Duration::from_secs(10), || {
        s.server.get_url(&metadata_url).send().status == 200
    });
    assert!(extracted, "the stored wheel's METADATA is served after recovery");
    let log = s.server.stderr_text();
    assert!(!log.contains("non-zero transaction depth"), "a poisoned connection: {log}");
    data_dir_is_sound(&s.disk.path().join("data"));
}

fn get(server: &Server, project: &str) -> Response {
    server.get(&format!("/simple/{project}/")).header("Accept", JSON).send()
}
