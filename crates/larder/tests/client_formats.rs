//! `larder client-config --format ...`: every generated configuration is fed
//! to the real client (the pinned pip, uv and twine of `.venv-test`), which
//! then talks to a running `larder serve`; the same configuration generated
//! with a wrong URL (a closed port on 127.0.0.1) makes the install fail.
//!
//! - pip: the pip.conf through `PIP_CONFIG_FILE`;
//! - uv: the uv.toml through `UV_CONFIG_FILE`;
//! - env: the `export` / `unset` lines sourced by `sh`, then pip or uv, in
//!   an environment that would otherwise send them elsewhere;
//! - pypirc: twine uploads to the repository the file names;
//! - poetry, pdm: their TOML is parsed and checked (the real poetry and pdm
//!   publish to larder in private_poetry.rs and private_pdm_flit.rs).
//!
//! The fixture tree: `fixture-cfg` 1.0 (wheel) requires `fixture-cfg-dep>=1`
//! (wheel 1.0), both added with `larder add`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use larder_testkit::client::{closed_index_url, installed_version, strip_ansi};

const APP: &str = "fixture_cfg-1.0-py3-none-any.whl";
const DEP: &str = "fixture_cfg_dep-1.0-py3-none-any.whl";

fn tree(dir: &Path) -> Vec<Built> {
    vec![
        Wheel::new("fixture-cfg", "1.0").requires_dist("fixture-cfg-dep>=1").build(dir),
        Wheel::new("fixture-cfg-dep", "1.0").build(dir),
    ]
}

/// `larder client-config ARGS` in the clients' isolated environment
/// (their HOME and XDG directories); its stdout.
fn client_config(clients: &Clients, args: &[&str]) -> String {
    let out = run_ok(clients.command(env!("CARGO_BIN_EXE_larder")).arg("client-config").args(args));
    String::from_utf8(out.stdout).expect("UTF-8 configuration")
}

/// Writes `text` to `name` in the clients' work directory.
fn save(clients: &Clients, name: &str, text: &str) -> PathBuf {
    let path = clients.work_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Both fixture wheels were downloaded from larder.
#[track_caller]
fn assert_downloaded(server: &Server) {
    let log = server.wait_for_log(Duration::from_secs(5), |log| {
        [APP, DEP].iter().all(|f| log.iter().any(|r| r.method == "GET" && r.path.ends_with(f) && r.status == 200))
    });
    for file in [APP, DEP] {
        assert!(
            log.iter().any(|r| r.method == "GET" && r.path.ends_with(file) && r.status == 200),
            "{file} was not downloaded from larder: {log:#?}"
        );
    }
}

#[track_caller]
fn assert_installed(clients: &Clients, python: &Path) {
    assert_eq!(installed_version(clients, python, "fixture-cfg").as_deref(), Some("1.0"));
    assert_eq!(installed_version(clients, python, "fixture-cfg-dep").as_deref(), Some("1.0"));
}

#[track_caller]
fn assert_not_installed(clients: &Clients, python: &Path) {
    assert_eq!(installed_version(clients, python, "fixture-cfg"), None);
}

/// `python -m pip --python TARGET install fixture-cfg`.
fn pip_install(clients: &Clients, target: &Path) -> Command {
    let mut cmd = clients.pip();
    cmd.arg("--python").arg(target).args(["install", "fixture-cfg"]);
    cmd
}

/// `uv pip install --python TARGET fixture-cfg`.
fn uv_install(clients: &Clients, target: &Path) -> Command {
    let mut cmd = clients.uv();
    cmd.args(["pip", "install", "--python"]).arg(target).arg("fixture-cfg");
    cmd
}

/// `sh -c '. ENV_FILE && exec "$@"' sh-with PROGRAM ARGS...`: the command
/// `inner` (its program, arguments and environment) run after sourcing the
/// env lines in `env_file`.
fn sourced(clients: &Clients, env_file: &Path, inner: &Command) -> Command {
    let mut cmd = clients.command("/bin/sh");
    cmd.arg("-c")
        .arg(r#"env_file="$1"; shift; . "$env_file" && exec "$@""#)
        .arg("sh")
        .arg(env_file)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

// ------------------------------------------------------------------ pip --

#[test]
fn pip_conf_through_pip_config_file_installs_and_a_wrong_url_fails() {
    let clients = Clients::new();
    let env = Env::new("cfg-pip", tree);
    let url = env.server.url("/simple/").to_string();

    let conf = client_config(&clients, &["--url", &url, "--format", "pip", "--retries", "1", "--timeout", "10"]);
    assert!(conf.contains(&format!("index-url = {url}\n")), "{conf}");
    let conf_file = save(&clients, "pip.conf", &conf);
    let target = clients.target_venv("good");
    run_ok(pip_install(&clients, &target).env("PIP_CONFIG_FILE", &conf_file));
    assert_installed(&clients, &target);
    assert_downloaded(&env.server);

    let wrong = closed_index_url();
    let conf =
        client_config(&clients, &["--url", wrong.as_str(), "--format", "pip", "--retries", "1", "--timeout", "10"]);
    let conf_file = save(&clients, "wrong-pip.conf", &conf);
    let target = clients.target_venv("wrong");
    run_fails(pip_install(&clients, &target).env("PIP_CONFIG_FILE", &conf_file));
    assert_not_installed(&clients, &target);
}

// ------------------------------------------------------------------- uv --

#[test]
fn uv_toml_through_uv_config_file_installs_and_a_wrong_url_fails() {
    let clients = Clients::new();
    let env = Env::new("cfg-uv", tree);
    let url = env.server.url("/simple/").to_string();

    let conf = client_config(&clients, &["--url", &url, "--format", "uv", "--retries", "1", "--timeout", "10"]);
    let parsed: toml::Table = conf.parse().unwrap_or_else(|e| panic!("uv.toml does not parse: {e}\n{conf}"));
    assert_eq!(parsed["index"][0]["url"].as_str(), Some(url.as_str()), "{conf}");
    // Clients sets UV_NO_CONFIG=1 (no discovered file); an explicit
    // UV_CONFIG_FILE is still read.
    let conf_file = save(&clients, "uv.toml", &conf);
    let target = clients.target_venv("good");
    run_ok(uv_install(&clients, &target).env("UV_CONFIG_FILE", &conf_file));
    assert_installed(&clients, &target);
    assert_downloaded(&env.server);

    let wrong = closed_index_url();
    let conf = client_config(&clients, &["--url", wrong.as_str(), "--format", "uv"]);
    let conf_file = save(&clients, "wrong-uv.toml", &conf);
    let target = clients.target_venv("wrong");
    run_fails(uv_install(&clients, &target).env("UV_CONFIG_FILE", &conf_file).env("UV_HTTP_RETRIES", "0"));
    assert_not_installed(&clients, &target);
}

// ------------------------------------------------------------------ env --

/// An environment that points pip and uv away from larder: a find-links
/// directory holding a better `fixture-cfg` (9.0), indexes on a closed
/// port, and the no-index switches. The env lines must neutralise all of
/// it.
struct Hostile {
    find_links: TempDir,
    closed: Url,
}

impl Hostile {
    fn new() -> Hostile {
        let find_links = temp_dir("cfg-find-links");
        Wheel::new("fixture-cfg", "9.0").build(find_links.path());
        Hostile { find_links, closed: closed_index_url() }
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("PIP_FIND_LINKS", self.find_links.path())
            .env("PIP_EXTRA_INDEX_URL", self.closed.as_str())
            .env("PIP_NO_INDEX", "1")
            .env("UV_FIND_LINKS", self.find_links.path())
            .env("UV_INDEX", self.closed.as_str())
            .env("UV_EXTRA_INDEX_URL", self.closed.as_str())
            .env("UV_INDEX_URL", self.closed.as_str())
            .env("UV_NO_INDEX", "1");
    }
}

fn env_lines(clients: &Clients, url: &str, name: &str) -> PathBuf {
    let text = client_config(clients, &["--url", url, "--format", "env", "--retries", "1", "--timeout", "10"]);
    for line in text.lines() {
        assert!(
            line.is_empty() || line.starts_with('#') || line.starts_with("export ") || line.starts_with("unset "),
            "not an env line: {line:?}\n{text}"
        );
    }
    save(clients, name, &text)
}

#[test]
fn env_lines_point_pip_at_larder_and_a_wrong_url_fails() {
    let clients = Clients::new();
    let env = Env::new("cfg-env-pip", tree);
    let url = env.server.url("/simple/").to_string();
    let hostile = Hostile::new();

    // Control: the hostile environment alone installs 9.0 from find-links.
    let target = clients.target_venv("control");
    let mut control = pip_install(&clients, &target);
    hostile.apply(&mut control);
    run_ok(&mut control);
    assert_eq!(installed_version(&clients, &target, "fixture-cfg").as_deref(), Some("9.0"));

    let env_file = env_lines(&clients, &url, "larder.env");
    let target = clients.target_venv("good");
    let mut inner = pip_install(&clients, &target);
    hostile.apply(&mut inner);
    run_ok(&mut sourced(&clients, &env_file, &inner));
    assert_installed(&clients, &target);
    assert_downloaded(&env.server);

    let env_file = env_lines(&clients, closed_index_url().as_str(), "wrong.env");
    let target = clients.target_venv("wrong");
    let mut inner = pip_install(&clients, &target);
    hostile.apply(&mut inner);
    run_fails(&mut sourced(&clients, &env_file, &inner));
    assert_not_installed(&clients, &target);
}

#[test]
fn env_lines_point_uv_at_larder_and_a_wrong_url_fails() {
    let clients = Clients::new();
    let env = Env::new("cfg-env-uv", tree);
    let url = env.server.url("/simple/").to_string();
    let hostile = Hostile::new();

    let env_file = env_lines(&clients, &url, "larder.env");
    let target = clients.target_venv("good");
    let mut inner = uv_install(&clients, &target);
    hostile.apply(&mut inner);
    run_ok(&mut sourced(&clients, &env_file, &inner));
    assert_installed(&clients, &target);
    assert_downloaded(&env.server);

    let env_file = env_lines(&clients, closed_index_url().as_str(), "wrong.env");
    let target = clients.target_venv("wrong");
    let mut inner = uv_install(&clients, &target);
    hostile.apply(&mut inner);
    run_fails(&mut sourced(&clients, &env_file, &inner));
    assert_not_installed(&clients, &target);
}

// --------------------------------------------------------------- pypirc --

/// twine is not an installer: the test checks that `twine upload
/// --repository larder --config-file <generated .pypirc>` sends the upload
/// to the repository URL in that file, on larder's address.
///
/// larder has no upload endpoint yet, so larder answers the POST with an
/// HTTP error (404 today) and twine fails with `HTTPError: ... from <URL>`,
/// which is what the test expects — as opposed to a configuration error
/// (`InvalidConfiguration`, a missing section, a prompt for a URL). Once an
/// upload endpoint exists, a successful upload passes too; either way
/// larder's request log must show the POST.
#[test]
fn pypirc_sends_twine_uploads_to_larder() {
    let clients = Clients::new();
    let env = Env::new("cfg-pypirc", tree);
    let url = env.server.url("/simple/").to_string();

    let text = client_config(&clients, &["--url", &url, "--format", "pypirc"]);
    let repository = text
        .lines()
        .find_map(|l| l.strip_prefix("repository = "))
        .unwrap_or_else(|| panic!("no repository line:\n{text}"))
        .trim()
        .to_owned();
    let repository_url = Url::parse(&repository).unwrap();
    assert_eq!(repository_url.host_str(), Some("127.0.0.1"), "{text}");
    assert_eq!(repository_url.port(), Some(env.server.addr().port()), "{text}");
    let pypirc = save(&clients, "larder.pypirc", &text);

    let out = run(clients
        .twine()
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository", "larder", "--config-file"])
        .arg(&pypirc)
        .arg(&env.file(DEP).path)
        // The generated section names the user (__token__) and leaves the
        // password to the user.
        .env("TWINE_PASSWORD", "test-token")
        .env("COLUMNS", "500"));
    let output =
        strip_ansi(&format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    assert!(!output.contains("InvalidConfiguration"), "{output}");
    assert!(output.contains(&format!("Uploading distributions to {repository}")), "{output}");
    if !out.status.success() {
        assert!(
            output.contains("HTTPError: 4") && output.contains(&format!("from {repository}")),
            "twine should report larder's HTTP error for {repository}:\n{output}"
        );
    }
    let path = repository_url.path().to_owned();
    let log =
        env.server.wait_for_log(Duration::from_secs(5), |log| log.iter().any(|r| r.method == "POST" && r.path == path));
    assert!(
        log.iter().any(|r| r.method == "POST" && r.path == path),
        "no POST {path} in larder's log: {log:#?}\n{output}"
    );

    // The same file with the URL of a closed port: twine cannot connect.
    let wrong = closed_index_url();
    let text = client_config(&clients, &["--url", wrong.as_str(), "--format", "pypirc"]);
    let pypirc = save(&clients, "wrong.pypirc", &text);
    let out = run_fails(
        clients
            .twine()
            .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository", "larder", "--config-file"])
            .arg(&pypirc)
            .arg(&env.file(DEP).path)
            .env("TWINE_PASSWORD", "test-token")
            .env("COLUMNS", "500"),
    );
    let output = strip_ansi(&describe_output(&out));
    assert!(!output.contains("InvalidConfiguration"), "{output}");
    assert!(output.contains(&format!(":{}", wrong.port().unwrap())), "{output}");
}

// ---------------------------------------------------------- poetry, pdm --

#[test]
fn poetry_and_pdm_sources_parse_with_url_priority_and_name() {
    let clients = Clients::new();
    let first = "http://127.0.0.1:3141/simple/";
    let second = "https://127.0.0.1:8443/simple/";

    let text = client_config(&clients, &["--url", first, "--url", second, "--format", "poetry"]);
    let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("poetry TOML: {e}\n{text}"));
    let sources = parsed["tool"]["poetry"]["source"].as_array().expect("[[tool.poetry.source]]");
    assert_eq!(sources.len(), 2, "{text}");
    assert_eq!(sources[0]["name"].as_str(), Some("larder"), "{text}");
    assert_eq!(sources[0]["url"].as_str(), Some(first), "{text}");
    // primary: replaces the public index (poetry stops using it implicitly).
    assert_eq!(sources[0]["priority"].as_str(), Some("primary"), "{text}");
    assert_eq!(sources[1]["url"].as_str(), Some(second), "{text}");
    assert_eq!(sources[1]["priority"].as_str(), Some("supplemental"), "{text}");
    assert_ne!(sources[0]["name"], sources[1]["name"], "{text}");
    assert!(text.contains("pip merges every index") && text.contains("uv takes the first index"), "{text}");

    let text = client_config(&clients, &["--url", first, "--url", second, "--format", "pdm"]);
    let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("pdm TOML: {e}\n{text}"));
    let sources = parsed["tool"]["pdm"]["source"].as_array().expect("[[tool.pdm.source]]");
    assert_eq!(sources.len(), 2, "{text}");
    // A source named "pypi" replaces pdm's default index.
    assert_eq!(sources[0]["name"].as_str(), Some("pypi"), "{text}");
    assert_eq!(sources[0]["url"].as_str(), Some(first), "{text}");
    assert_eq!(sources[0]["verify_ssl"].as_bool(), Some(false), "plain http: {text}");
    assert_eq!(sources[1]["url"].as_str(), Some(second), "{text}");
    assert_eq!(sources[1]["verify_ssl"].as_bool(), Some(true), "https: {text}");
    assert_ne!(sources[0]["name"], sources[1]["name"], "{text}");

    // One URL: no several-URL comment, one source.
    let text = client_config(&clients, &["--url", first, "--format", "poetry"]);
    let parsed: toml::Table = text.parse().unwrap();
    assert_eq!(parsed["tool"]["poetry"]["source"].as_array().unwrap().len(), 1);
    assert!(!text.contains("pip merges"), "{text}");
}

#[test]
fn formats_without_a_url_or_with_a_bad_one_are_refused() {
    let clients = Clients::new();
    let larder_bin = env!("CARGO_BIN_EXE_larder");
    let out = run_fails(clients.command(larder_bin).args(["client-config", "--format", "pip"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"), "{}", describe_output(&out));
    run_fails(clients.command(larder_bin).args(["client-config", "--format", "pip", "--url", "not a url"]));
    // A missing CA bundle is an error, not a `cert` line pointing nowhere.
    run_fails(clients.command(larder_bin).args([
        "client-config",
        "--format",
        "pip",
        "--url",
        "https://127.0.0.1:1/simple/",
        "--cert",
        "/nonexistent/ca.pem",
    ]));
}

// --------------------------------------------------------- several URLs --

/// Two larders: A has `fixture-order` 1.0, B has 2.0. Generated with
/// `--url A --url B`, pip (which merges every index) installs 2.0, and uv
/// (first index that has the name) installs 1.0 from A: the configuration
/// keeps the order, as its comment says.
#[test]
fn several_urls_keep_their_order_and_say_how_each_client_treats_them() {
    let clients = Clients::new();
    let a = Env::new("cfg-order-a", |dir| vec![Wheel::new("fixture-order", "1.0").build(dir)]);
    let b = Env::new("cfg-order-b", |dir| vec![Wheel::new("fixture-order", "2.0").build(dir)]);
    let url_a = a.server.url("/simple/").to_string();
    let url_b = b.server.url("/simple/").to_string();
    let urls = ["--url", url_a.as_str(), "--url", url_b.as_str()];

    let install = |cmd: &mut Command, target: &Path| {
        cmd.arg(target).arg("fixture-order");
        run_ok(cmd);
        installed_version(&clients, target, "fixture-order")
    };

    for format in ["pip", "uv", "env"] {
        let text = client_config(&clients, &[&urls[..], &["--format", format]].concat());
        assert!(
            text.contains("pip merges every index") && text.contains("uv takes the first index"),
            "{format}: no comment on several URLs:\n{text}"
        );
        assert!(text.contains("ONE larder URL"), "{format}: no recommendation:\n{text}");
    }

    let pip_conf = save(&clients, "pip.conf", &client_config(&clients, &[&urls[..], &["--format", "pip"]].concat()));
    let target = clients.target_venv("pip");
    run_ok(
        clients.pip().env("PIP_CONFIG_FILE", &pip_conf).arg("--python").arg(&target).args(["install", "fixture-order"]),
    );
    assert_eq!(installed_version(&clients, &target, "fixture-order").as_deref(), Some("2.0"), "pip merges");

    let uv_toml = save(&clients, "uv.toml", &client_config(&clients, &[&urls[..], &["--format", "uv"]].concat()));
    let target = clients.target_venv("uv");
    let mut cmd = clients.uv();
    cmd.env("UV_CONFIG_FILE", &uv_toml).args(["pip", "install", "--python"]);
    assert_eq!(install(&mut cmd, &target).as_deref(), Some("1.0"), "uv: first index first");

    let env_file = save(&clients, "larder.env", &client_config(&clients, &[&urls[..], &["--format", "env"]].concat()));
    let target = clients.target_venv("uv-env");
    let mut inner = clients.uv();
    inner.args(["pip", "install", "--python"]).arg(&target).arg("fixture-order");
    run_ok(&mut sourced(&clients, &env_file, &inner));
    assert_eq!(
        installed_version(&clients, &target, "fixture-order").as_deref(),
        Some("1.0"),
        "uv with the env lines: the first --url first"
    );
}
