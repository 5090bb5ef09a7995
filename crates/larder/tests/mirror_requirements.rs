//! `larder mirror --requirements` for two Python versions (3.10, 3.12) and
//! two platforms (manylinux_2_28_x86_64, win_amd64): exactly the files
//! those four environments need are stored (the dependency closure with
//! extras and markers, platform wheels, an sdist-only dependency and the
//! backend wheel its build needs), nothing for other platforms or
//! Pythons; then, with the upstream stopped, pip and uv install the
//! requirements on this machine (Linux x86-64, the test venv's Python)
//! through `larder serve --offline` and from the exported tree through a
//! `file://` URL. An unresolvable requirement is reported by name. With an
//! index that has no PEP 658 metadata the stored set must be the same.
//!
//! The fixture index:
//!
//! - `app` 1.0, 2.0, 3.0rc1 (pure wheels) and an sdist of 2.0. 2.0 requires
//!   `native>=1`, `srconly>=1`, `pywin-helper; sys_platform == "win32"`
//!   and, with the extra `cli`, `clitool>=1`. Chosen: the 2.0 wheel (a
//!   release with a compatible wheel needs no sdist).
//! - `native` 1.0: CPython wheels for cp310/cp312 on manylinux_2_17_x86_64
//!   and win_amd64, `cp310-abi3` for both platforms (stored), and wheels
//!   no target can install: cp39, the local Python's own `cpXY` when it is
//!   neither 3.10 nor 3.12, cp313, macOS, musllinux, manylinux_2_34 (newer
//!   glibc than 2.28), win32, win_arm64, aarch64.
//! - `clitool` 1.0 (the extra), `pywin-helper` 1.0 (Windows only),
//!   `winonly` 1.0 (a win_amd64 wheel stored; win32 and macOS not),
//!   `oldpy` 1.0 and 2.0 (`Requires-Python >=3.11`: only 1.0 fits 3.10,
//!   and 3.12 does not want `oldpy` at all), `macstuff` (darwin only: not
//!   mirrored), `unrelated` (never asked for).
//! - `srconly` 1.0: an sdist only, built by the backend in the wheel of
//!   `fixture-build-backend` (1.0 stored, 0.5 not), fetched from the index.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use larder_testkit::client::BackendSdist;
use larder_testkit::mirror::{Outcome, SerialUpstream, run_larder, stored_digests};
use larder_testkit::{Built, Clients, Larder, Sdist, Wheel, run, run_ok, temp_dir};
use serde_json::Value;
use tempfile::TempDir;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

const REQUIREMENTS: &str = r#"# the application, with its command-line extra
app[cli]>=1
winonly; sys_platform == "win32"
oldpy; python_version < "3.11"   # only on old Pythons
macstuff; sys_platform == "darwin"
"#;

const TARGETS: &[&str] = &[
    "--python-version",
    "3.10",
    "--python-version",
    "3.12",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "win_amd64",
];

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

/// The Python (major, minor) of the test venv.
fn local_python(clients: &Clients) -> (u8, u8) {
    let out = run_ok(clients.python().args(["-c", "import sys; print(sys.version_info[0], sys.version_info[1])"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse::<u8>().expect("version number"));
    let version = (parts.next().expect("major"), parts.next().expect("minor"));
    assert!(
        version.0 == 3 && version.1 >= 10,
        "these tests install the cp310-abi3 / cp3XY fixture wheels: the test venv needs Python >= 3.10, has {version:?}"
    );
    version
}

/// One fixture file, whether the mirror must hold it, and the
/// `requires-python` its page entry gives.
struct Fx {
    built: Built,
    wanted: bool,
    requires_python: Option<&'static str>,
}

struct Fixture {
    files: Vec<Fx>,
    /// The `native` wheel pip and uv must choose here.
    local_native_tag: String,
    local: (u8, u8),
    _dir: TempDir,
}

impl Fixture {
    fn build(local: (u8, u8)) -> Fixture {
        let dir = temp_dir("mirror-req-fx");
        let d = dir.path();
        let mut files = Vec::new();
        let mut add = |built: Built, wanted: bool| files.push(Fx { built, wanted, requires_python: None });

        add(Wheel::new("app", "1.0").build(d), false);
        add(
            Wheel::new("app", "2.0")
                .requires_dist("native>=1")
                .requires_dist("srconly>=1")
                .requires_dist("pywin-helper; sys_platform == \"win32\"")
                // The builder writes one `Requires-Dist` per call; the
                // extra also needs its `Provides-Extra` line (pip ignores
                // an extra the metadata does not provide).
                .requires_dist("clitool>=1; extra == \"cli\"\nProvides-Extra: cli")
                .build(d),
            true,
        );
        add(Sdist::new("app", "2.0").requires_dist("native>=1").build(d), false);
        add(Wheel::new("app", "3.0rc1").requires_dist("native>=1").build(d), false);

        let local_tag = format!("cp{}{}", local.0, local.1);
        let mut native: Vec<(String, &str, &str, bool)> = vec![
            ("cp310".into(), "cp310", "manylinux_2_17_x86_64", true),
            ("cp312".into(), "cp312", "manylinux_2_17_x86_64", true),
            ("cp310".into(), "abi3", "manylinux_2_17_x86_64", true),
            ("cp310".into(), "cp310", "win_amd64", true),
            ("cp312".into(), "cp312", "win_amd64", true),
            ("cp310".into(), "abi3", "win_amd64", true),
            ("cp39".into(), "cp39", "manylinux_2_17_x86_64", false),
            ("cp310".into(), "cp310", "macosx_11_0_arm64", false),
            ("cp310".into(), "cp310", "musllinux_1_2_x86_64", false),
            ("cp312".into(), "cp312", "manylinux_2_34_x86_64", false),
            ("cp310".into(), "cp310", "win32", false),
            ("cp312".into(), "cp312", "win_arm64", false),
            ("cp310".into(), "cp310", "manylinux_2_17_aarch64", false),
        ];
        let local_native_tag = if local == (3, 10) || local == (3, 12) {
            format!("{local_tag}-{local_tag}-manylinux_2_17_x86_64")
        } else {
            // This machine's own CPython wheel exists upstream but no
            // target wants it: installs here must use the abi3 wheel.
            native.push((local_tag.clone(), "", "manylinux_2_17_x86_64", false));
            "cp310-abi3-manylinux_2_17_x86_64".to_owned()
        };
        if local_tag != "cp313" {
            native.push(("cp313".into(), "cp313", "manylinux_2_17_x86_64", false));
        }
        for (python, abi, platform, wanted) in native {
            let abi = if abi.is_empty() { python.as_str() } else { abi };
            let tag = format!("{python}-{abi}-{platform}");
            add(
                Wheel::new("native", "1.0")
                    .tags(&python, abi, platform)
                    .module_source(&format!("WHEEL_TAG = {tag:?}\n"))
                    .build(d),
                wanted,
            );
        }

        add(Wheel::new("clitool", "1.0").build(d), true);
        add(Wheel::new("pywin-helper", "1.0").build(d), true);
        add(Wheel::new("winonly", "1.0").tags("py3", "none", "win_amd64").build(d), true);
        add(Wheel::new("winonly", "1.0").tags("py3", "none", "win32").build(d), false);
        add(Wheel::new("winonly", "1.0").tags("py3", "none", "macosx_11_0_arm64").build(d), false);
        add(Wheel::new("oldpy", "1.0").build(d), true);
        add(Wheel::new("macstuff", "1.0").build(d), false);
        add(Wheel::new("unrelated", "1.0").build(d), false);

        let srconly = BackendSdist::new("srconly", "1.0", "fixture-build-backend", "fixturebuild_backend");
        add(srconly.build(d), true);
        add(srconly.backend_wheel("1.0").build(d), true);
        add(srconly.backend_wheel("0.5").build(d), false);

        files.push(Fx {
            built: Wheel::new("oldpy", "2.0").requires_python(">=3.11").build(d),
            wanted: false,
            requires_python: Some(">=3.11"),
        });

        Fixture { files, local_native_tag, local, _dir: dir }
    }

    fn upstream(&self) -> SerialUpstream {
        let upstream = SerialUpstream::start();
        for fx in &self.files {
            upstream.add_with(&fx.built, fx.requires_python);
        }
        upstream
    }

    fn wanted(&self) -> BTreeSet<&str> {
        self.files.iter().filter(|f| f.wanted).map(|f| f.built.filename.as_str()).collect()
    }

    fn metadata_digests(&self) -> BTreeSet<String> {
        self.files.iter().filter_map(|f| f.built.metadata.as_deref().map(larder_testkit::sha256_hex)).collect()
    }
}

fn mirror_requirements(
    larder: &Larder,
    data_dir: &Path,
    upstream: &SerialUpstream,
    requirements: &Path,
    targets: &[&str],
) -> Outcome {
    let mut cmd = larder.command();
    cmd.arg("mirror")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--upstream", &upstream.simple_url(), "--jobs", "4", "--quiet"])
        .arg("--requirements")
        .arg(requirements)
        .args(targets);
    run_larder(&mut cmd)
}

fn write_requirements(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write requirements");
    path
}

/// Mirrors the fixture's requirements into a fresh data dir and checks
/// that exactly the wanted files are stored; returns the upstream (still
/// running), the data dir and the requirements file.
fn mirrored(fixture: &Fixture, work: &Path) -> (SerialUpstream, TempDir, PathBuf) {
    let upstream = fixture.upstream();
    let data = temp_dir("mirror-req-data");
    let requirements = write_requirements(work, "requirements.txt", REQUIREMENTS);
    let out = mirror_requirements(&larder(), data.path(), &upstream, &requirements, TARGETS);
    out.assert_success();

    // Blobs: every wanted file, no unwanted one, nothing else but
    // core-metadata blobs.
    let stored = stored_digests(data.path());
    let mut wrong = Vec::new();
    for fx in &fixture.files {
        let present = stored.contains(&fx.built.sha256);
        if present != fx.wanted {
            wrong.push(format!(
                "{} {}",
                fx.built.filename,
                if fx.wanted { "NOT stored" } else { "stored but not needed by any target" }
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong files stored:\n{}\n{}", wrong.join("\n"), out.describe());
    let known: BTreeSet<String> =
        fixture.files.iter().map(|f| f.built.sha256.clone()).chain(fixture.metadata_digests()).collect();
    let strangers: Vec<&String> = stored.iter().filter(|d| !known.contains(*d)).collect();
    assert!(strangers.is_empty(), "blobs that are no fixture file nor its metadata: {strangers:?}");

    // No file was downloaded only to be thrown away: the upstream served
    // only the files that are kept.
    for fx in fixture.files.iter().filter(|f| !f.wanted) {
        assert_eq!(
            upstream.count(&SerialUpstream::file_path(&fx.built)),
            0,
            "{} was downloaded\n{}",
            fx.built.filename,
            upstream.describe()
        );
    }
    (upstream, data, requirements)
}

/// The filenames an offline project page lists.
fn offline_filenames(server: &larder_testkit::Server, project: &str) -> (u16, BTreeSet<String>) {
    let response = server.get(&format!("/simple/{project}/")).header("Accept", JSON).send();
    if response.status != 200 {
        return (response.status, BTreeSet::new());
    }
    let page: Value = response.json();
    let names = page["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["filename"].as_str().expect("filename").to_owned())
        .collect();
    (200, names)
}

fn pip_install(clients: &Clients, target: &Path, index: &str, requirements: &Path) -> std::process::Output {
    let mut cmd = clients.pip();
    cmd.arg("--python").arg(target).args(["install", "--index-url", index, "-r"]).arg(requirements);
    run(&mut cmd)
}

fn uv_install(clients: &Clients, target: &Path, index: &str, requirements: &Path) -> std::process::Output {
    let mut cmd = clients.uv();
    cmd.args(["pip", "install", "--python"]).arg(target).args(["--index-url", index, "-r"]).arg(requirements);
    run(&mut cmd)
}

/// The right distributions are installed in `python`'s environment, with
/// the `native` wheel this machine should get.
#[track_caller]
fn assert_installed(clients: &Clients, python: &Path, fixture: &Fixture, how: &str, out: &std::process::Output) {
    assert!(out.status.success(), "{how} failed:\n{}", larder_testkit::describe_output(out));
    let script = r#"
import importlib.metadata as m, json
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
import native, srconly
print(json.dumps({
    "versions": {n: v(n) for n in ["app", "native", "clitool", "srconly", "oldpy", "winonly", "pywin-helper", "macstuff", "fixture-build-backend"]},
    "native_tag": native.WHEEL_TAG,
    "srconly_built_by": srconly.BUILT_BY,
}))
"#;
    let out2 = run_ok(clients.command(python).arg("-c").arg(script));
    let got: Value = serde_json::from_slice(&out2.stdout).expect("JSON from the check script");
    let oldpy = if fixture.local < (3, 11) { Value::from("1.0") } else { Value::Null };
    let expected = serde_json::json!({
        "versions": {
            "app": "2.0", "native": "1.0", "clitool": "1.0", "srconly": "1.0", "oldpy": oldpy,
            "winonly": null, "pywin-helper": null, "macstuff": null, "fixture-build-backend": null,
        },
        "native_tag": fixture.local_native_tag,
        "srconly_built_by": "fixture-build-backend",
    });
    assert_eq!(got, expected, "{how} installed the wrong set\n{}", larder_testkit::describe_output(out));
}

#[test]
fn closure_for_two_pythons_and_two_platforms_installs_offline_through_serve() {
    let clients = Clients::new();
    let fixture = Fixture::build(local_python(&clients));
    let work = temp_dir("mirror-req-work");
    let (mut upstream, data, requirements) = mirrored(&fixture, work.path());
    upstream.stop();

    let server = larder().serve_with(data.path(), &["--offline"]);
    // Offline pages list exactly the stored files.
    for project in ["app", "native", "winonly", "oldpy", "srconly", "fixture-build-backend", "clitool", "pywin-helper"]
    {
        let (status, listed) = offline_filenames(&server, project);
        assert_eq!(status, 200, "offline page of {project}");
        let want: BTreeSet<String> = fixture
            .files
            .iter()
            .filter(|f| f.wanted && f.built.project == project)
            .map(|f| f.built.filename.clone())
            .collect();
        assert_eq!(listed, want, "offline page of {project}");
    }
    for project in ["macstuff", "unrelated"] {
        assert_eq!(offline_filenames(&server, project).0, 404, "{project} was never mirrored");
    }

    let index = server.url("/simple/").to_string();
    let target = clients.target_venv("pip-offline");
    let out = pip_install(&clients, &target, &index, &requirements);
    assert_installed(&clients, &target, &fixture, "pip through larder serve --offline", &out);

    let target = clients.target_venv("uv-offline");
    let out = uv_install(&clients, &target, &index, &requirements);
    assert_installed(&clients, &target, &fixture, "uv through larder serve --offline", &out);
}

#[test]
fn closure_installs_from_the_exported_tree_by_file_url() {
    let clients = Clients::new();
    let fixture = Fixture::build(local_python(&clients));
    let work = temp_dir("mirror-req-work");
    let (mut upstream, data, requirements) = mirrored(&fixture, work.path());
    upstream.stop();

    let tree = temp_dir("mirror-req-tree");
    let mut cmd = larder().command();
    cmd.arg("export").arg("--data-dir").arg(data.path()).arg("--to").arg(tree.path());
    run_larder(&mut cmd).assert_success();

    // The tree holds exactly the wanted files.
    let mut in_tree = BTreeSet::new();
    for dir in std::fs::read_dir(tree.path().join("files")).expect("files/").flatten() {
        for file in std::fs::read_dir(dir.path()).expect("files/<sha>").flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".metadata") {
                in_tree.insert(name);
            }
        }
    }
    let want: BTreeSet<String> = fixture.wanted().into_iter().map(str::to_owned).collect();
    assert_eq!(in_tree, want, "files in the exported tree");

    let index = url_of_dir(&tree.path().join("simple"));
    let target = clients.target_venv("pip-file");
    let out = pip_install(&clients, &target, &index, &requirements);
    assert_installed(&clients, &target, &fixture, "pip from the file:// tree", &out);

    let target = clients.target_venv("uv-file");
    let out = uv_install(&clients, &target, &index, &requirements);
    assert_installed(&clients, &target, &fixture, "uv from the file:// tree", &out);
}

fn url_of_dir(dir: &Path) -> String {
    let url = larder_testkit::Url::from_directory_path(dir).expect("absolute path");
    url.to_string()
}

#[test]
fn unresolvable_requirements_are_reported_by_name() {
    let fixture = Fixture::build((3, 12));
    let work = temp_dir("mirror-req-bad");
    let upstream = fixture.upstream();
    let data = temp_dir("mirror-req-bad-data");
    let requirements = write_requirements(work.path(), "bad.txt", "app[cli]>=1\nnosuchproject>=1\nclitool>=5\n");
    let out = mirror_requirements(
        &larder(),
        data.path(),
        &upstream,
        &requirements,
        &["--python-version", "3.12", "--platform", "manylinux_2_28_x86_64"],
    );
    assert_eq!(out.code(), Some(1), "an unresolvable requirement must fail the run: {}", out.describe());
    let text = out.output();
    assert!(
        text.contains("nosuchproject>=1") && text.contains("nosuchproject is not on the index"),
        "the missing project is not named with its reason: {}",
        out.describe()
    );
    assert!(text.contains("clitool>=5"), "the unsatisfiable requirement is not named: {}", out.describe());
    // What does resolve is still mirrored.
    let stored = stored_digests(data.path());
    for filename in ["app-2.0-py3-none-any.whl", "native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"] {
        let fx = fixture.files.iter().find(|f| f.built.filename == filename).expect("fixture");
        assert!(stored.contains(&fx.built.sha256), "{filename} not mirrored: {}", out.describe());
    }
}

/// Without PEP 658 metadata the resolver reads a candidate's metadata from
/// the file itself. A candidate it then rejects (here `oldpy` 2.0, whose
/// `Requires-Python: >=3.11` is only in its METADATA, not on the page)
/// must not end up in the mirror: no target environment installs it.
#[test]
fn without_pep658_metadata_only_the_closure_is_stored() {
    let fixture = Fixture::build((3, 11));
    let work = temp_dir("mirror-req-nometa");
    let upstream = SerialUpstream::start();
    upstream.set_serve_metadata(false);
    for fx in &fixture.files {
        // No requires-python on the page either: only the METADATA says it.
        upstream.add_with(&fx.built, None);
    }
    let data = temp_dir("mirror-req-nometa-data");
    let requirements = write_requirements(work.path(), "requirements.txt", REQUIREMENTS);
    let out = mirror_requirements(&larder(), data.path(), &upstream, &requirements, TARGETS);
    out.assert_success();
    let stored = stored_digests(data.path());
    let wrong: Vec<String> = fixture
        .files
        .iter()
        .filter(|fx| stored.contains(&fx.built.sha256) != fx.wanted)
        .map(|fx| {
            format!(
                "{} {}",
                fx.built.filename,
                if fx.wanted { "NOT stored" } else { "stored but not needed by any target" }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong files stored when the index has no PEP 658 metadata (files downloaded to read \
         the metadata of candidates the resolver then rejected stay in the store and on the \
         mirror's pages):\n{}\n{}",
        wrong.join("\n"),
        out.describe()
    );
    // The summary counts every file fetched from the upstream, those read
    // while resolving (kept or removed again) included.
    let fetched = fixture.files.iter().filter(|fx| upstream.count(&SerialUpstream::file_path(&fx.built)) > 0).count();
    assert!(fetched > 0, "{}", upstream.describe());
    let summary = out.output();
    assert!(
        summary.contains(&format!(" {fetched} files downloaded ")),
        "the summary does not count the {fetched} files fetched:\n{}",
        out.describe()
    );
}
