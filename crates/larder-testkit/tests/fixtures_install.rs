//! The fixtures themselves are installable by real pip and uv, straight
//! from a directory (`--no-index --find-links`), with no index and no
//! build dependency: so when an end-to-end test against larder fails, the
//! fault is not in the fixtures.

use larder_testkit::{Clients, Sdist, Wheel, run_ok, temp_dir};

const CHECK: &str = "import importlib.metadata as m, fixture_wheel, fixture_sdist; \
    print(m.version('fixture-wheel'), fixture_wheel.__version__, m.version('fixture-sdist'), fixture_sdist.__version__, fixture_sdist.EXTRA)";

fn build(dir: &std::path::Path) {
    Wheel::new("fixture-wheel", "1.5").requires_dist("fixture-sdist>=0.1").build(dir);
    Sdist::new("fixture-sdist", "0.2").module_source("EXTRA = 'from the sdist'\n").build(dir);
}

#[test]
fn pip_installs_fixtures_from_a_directory() {
    let clients = Clients::new();
    let links = temp_dir("links");
    build(links.path());
    let target = clients.target_venv("target");
    run_ok(
        clients
            .pip()
            .arg("--python")
            .arg(&target)
            .args(["install", "--no-index", "--find-links"])
            .arg(links.path())
            .arg("fixture-wheel"),
    );
    let out = run_ok(clients.command(&target).args(["-c", CHECK]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.5 1.5 0.2 0.2 from the sdist");
}

#[test]
fn uv_installs_fixtures_from_a_directory() {
    let clients = Clients::new();
    let links = temp_dir("links");
    build(links.path());
    let target = clients.target_venv("target");
    run_ok(
        clients
            .uv()
            .args(["pip", "install", "--python"])
            .arg(&target)
            .args(["--no-index", "--find-links"])
            .arg(links.path())
            .arg("fixture-wheel"),
    );
    let out = run_ok(clients.command(&target).args(["-c", CHECK]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.5 1.5 0.2 0.2 from the sdist");
}

#[test]
fn the_sdist_backend_rebuilds_an_sdist_and_a_wheel() {
    // `uv build` runs every hook of the in-tree backend (sdist, then a
    // wheel from it), with no index at all.
    let clients = Clients::new();
    let dir = temp_dir("sdist");
    let sdist = Sdist::new("fixture-sdist", "0.2").build(dir.path());
    let src = dir.path().join("src");
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&sdist.path).unwrap())).unpack(&src).unwrap();
    let out_dir = dir.path().join("out");
    run_ok(clients.uv().args(["build", "--no-index", "--out-dir"]).arg(&out_dir).arg(src.join("fixture_sdist-0.2")));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["fixture_sdist-0.2-py3-none-any.whl", "fixture_sdist-0.2.tar.gz"],
        "uv build produced {names:?}"
    );
}
