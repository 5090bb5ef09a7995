//! Real `flit publish` and `pdm publish` (pinned in `.venv-test`) upload to
//! a named larder index with a token, and pip installs what they uploaded.
//!
//! - flit builds a wheel and an sdist from a flit_core project and uploads
//!   both (`FLIT_INDEX_URL`, `FLIT_USERNAME`, `FLIT_PASSWORD`);
//! - pdm uploads the files already in `dist/` (`--no-build`) twice: the
//!   second run sends the same bytes, which larder takes as a no-op;
//! - a file pdm sends under a published name with other bytes is refused
//!   with 409 (pdm exits non-zero and names the status), and the published
//!   bytes are still what larder serves.

mod common;

use std::path::Path;

use common::*;
use larder_testkit::client::installed_version;

/// A flit_core project `fixture-flit` 1.0 with one module.
fn flit_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("fixture_flit")).unwrap();
    std::fs::write(dir.join("fixture_flit/__init__.py"), "\"\"\"A fixture.\"\"\"\n__version__ = \"1.0\"\n").unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[build-system]\nrequires = [\"flit_core>=3.4\"]\nbuild-backend = \"flit_core.buildapi\"\n\n\
         [project]\nname = \"fixture-flit\"\nversion = \"1.0\"\ndescription = \"A fixture\"\n",
    )
    .unwrap();
}

#[test]
fn flit_and_pdm_publish_to_a_named_index_and_pip_installs_from_it() {
    let clients = Clients::new();
    let team = TeamIndex::start();
    let (server, token) = (&team.server, &team.token);
    let upload_url = server.url("/team/").to_string();

    // flit: build from source and upload.
    let flit_dir = clients.work_dir().join("fixture-flit");
    flit_project(&flit_dir);
    let out = run(clients
        .flit()
        .arg("publish")
        .current_dir(&flit_dir)
        .env("FLIT_INDEX_URL", &upload_url)
        .env("FLIT_USERNAME", "__token__")
        .env("FLIT_PASSWORD", token));
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(
        team_listed(server, "fixture-flit"),
        ["fixture_flit-1.0-py2.py3-none-any.whl", "fixture_flit-1.0.tar.gz"]
    );

    // pdm: upload what is in dist/, twice.
    let pdm_dir = clients.work_dir().join("fixture-pdm");
    let dist = pdm_dir.join("dist");
    let wheel = Wheel::new("fixture-pdm", "1.0").build(&dist);
    let sdist = Sdist::new("fixture-pdm", "1.0").build(&dist);
    std::fs::write(pdm_dir.join("pyproject.toml"), "[project]\nname = \"fixture-pdm\"\nversion = \"1.0\"\n").unwrap();
    let pdm_publish = || {
        run(clients
            .pdm()
            .args(["publish", "--no-build", "--repository", &upload_url, "--username", "__token__"])
            .args(["--password", token])
            .current_dir(&pdm_dir))
    };
    for _ in 0..2 {
        let out = pdm_publish();
        assert!(out.status.success(), "{}", describe_output(&out));
    }
    assert_eq!(team_listed(server, "fixture-pdm"), [wheel.filename.clone(), sdist.filename.clone()]);

    // Other bytes under the published wheel's name: refused, bytes kept.
    let published = std::fs::read(&wheel.path).unwrap();
    std::fs::remove_dir_all(&dist).unwrap();
    let other = Wheel::new("fixture-pdm", "1.0").extra_file("fixture_pdm/extra.py", b"changed = True\n").build(&dist);
    assert_eq!(other.filename, wheel.filename);
    let out = pdm_publish();
    assert!(!out.status.success(), "pdm replaced a published file: {}", describe_output(&out));
    assert!(describe_output(&out).contains("409 Conflict"), "{}", describe_output(&out));
    let page = server.get("/team/simple/fixture-pdm/").header("Accept", JSON).send().json();
    let href = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == wheel.filename.as_str())
        .and_then(|f| f["url"].as_str())
        .unwrap()
        .to_owned();
    let wheel_url = resolve(&server.url("/team/simple/fixture-pdm/"), &href);
    assert_eq!(server.get_url(&wheel_url).send().assert_status(200).body, published);

    let target = clients.target_venv("pdm-flit-target");
    let index = server.url("/team/simple/").to_string();
    run_ok(clients.pip().arg("--python").arg(&target).args([
        "install",
        "--index-url",
        &index,
        "fixture-flit",
        "fixture-pdm",
    ]));
    assert_eq!(installed_version(&clients, &target, "fixture-flit").as_deref(), Some("1.0"));
    assert_eq!(installed_version(&clients, &target, "fixture-pdm").as_deref(), Some("1.0"));
    assert!(!server.stderr_text().contains(token.as_str()), "the token is in the log");
}
