//! Real `poetry publish` (pinned in `.venv-test`) uploads a project's
//! built files to a named larder index with a token, twice (the second run
//! is a no-op), and pip installs the result from the index.

mod common;

use common::*;
use larder_testkit::client::installed_version;

#[test]
fn poetry_publishes_to_a_named_index_and_pip_installs_from_it() {
    let clients = Clients::new();
    let team = TeamIndex::start();
    let (server, token) = (&team.server, &team.token);

    let project = clients.work_dir().join("fixture-poetry");
    let dist = project.join("dist");
    let wheel = Wheel::new("fixture-poetry", "1.0").build(&dist);
    let sdist = Sdist::new("fixture-poetry", "1.0").build(&dist);
    std::fs::write(project.join("pyproject.toml"), "[project]\nname = \"fixture-poetry\"\nversion = \"1.0\"\n")
        .unwrap();
    for _ in 0..2 {
        let out = run(clients
            .poetry()
            .args(["publish", "--repository", "larder", "--no-interaction"])
            .current_dir(&project)
            .env("POETRY_REPOSITORIES_LARDER_URL", server.url("/team/").as_str())
            .env("POETRY_PYPI_TOKEN_LARDER", token));
        assert!(out.status.success(), "{}", describe_output(&out));
    }
    let mut files = vec![wheel.filename.clone(), sdist.filename.clone()];
    files.sort();
    assert_eq!(team_listed(server, "fixture-poetry"), files);

    let target = clients.target_venv("poetry-target");
    let index = server.url("/team/simple/").to_string();
    run_ok(clients.pip().arg("--python").arg(&target).args(["install", "--index-url", &index, "fixture-poetry"]));
    assert_eq!(installed_version(&clients, &target, "fixture-poetry").as_deref(), Some("1.0"));
    assert!(!server.stderr_text().contains(token.as_str()), "the token is in the log");
}
