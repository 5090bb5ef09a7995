//! `larder client-config --write [--scope user|venv]` then `--restore`
//! leaves the files exactly as they were: the same bytes and permissions
//! when a file existed, and no file (nor any directory larder created) when
//! there was none; no `*.larder-*` backup or marker left behind. Writing
//! twice and restoring once still restores the original.
//!
//! Every command runs with `HOME` and `XDG_CONFIG_HOME` in a per-test
//! temporary directory (the [`Clients`] state), and the venv scope with
//! `VIRTUAL_ENV` set to a temporary venv, so no real user's or machine's
//! file is touched. `--scope site` (which writes under /etc) is never run.
//!
//! Between write and restore, the real client reads the written file from
//! where larder put it (pip and uv install through larder with no
//! `PIP_CONFIG_FILE` / `UV_CONFIG_FILE`), so the file is not only written
//! and restored but written to the place that client reads it.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use larder_testkit::client::{Snapshot, closed_index_url, installed_version, larder_leftovers};

const ORIGINAL_PIP: &str =
    "# the user's own pip.conf\n[global]\nindex-url = http://127.0.0.1:9/simple/\ntimeout = 42\n";
const ORIGINAL_UV: &str = "# the user's own uv.toml\nnative-tls = false\n\n[[index]]\nname = \"mine\"\nurl = \"http://127.0.0.1:9/simple/\"\n";
const ORIGINAL_PYPIRC: &str =
    "[distutils]\nindex-servers = mine\n\n[mine]\nrepository = http://127.0.0.1:9/\nusername = me\npassword = s3cret\n";

/// A per-test sandbox: the clients' isolated HOME / XDG_CONFIG_HOME and a
/// larder serving `fixture-wr` 1.0.
struct Sandbox {
    clients: Clients,
    env: Env,
}

impl Sandbox {
    fn new(label: &str) -> Sandbox {
        let clients = Clients::new();
        let env = Env::new(label, |dir| vec![Wheel::new("fixture-wr", "1.0").build(dir)]);
        Sandbox { clients, env }
    }

    fn url(&self) -> String {
        self.env.server.url("/simple/").to_string()
    }

    fn home(&self) -> PathBuf {
        self.clients.state_dir().join("home")
    }

    fn xdg_config(&self) -> PathBuf {
        self.clients.state_dir().join("xdg-config")
    }

    /// What `--write` / `--restore` may touch, for the user scope.
    fn user_state(&self) -> (Snapshot, Snapshot) {
        (Snapshot::of(&self.home()), Snapshot::of(&self.xdg_config()))
    }

    /// `larder client-config ARGS` with HOME / XDG_CONFIG_HOME of the
    /// sandbox (and nothing else inherited).
    fn larder(&self, args: &[&str]) -> Command {
        let mut cmd = self.clients.command(env!("CARGO_BIN_EXE_larder"));
        cmd.arg("client-config").args(args);
        cmd
    }

    fn write(&self, format: &str, url: &str, extra: &[&str]) -> Output {
        run_ok(&mut self.larder(&[&["--url", url, "--format", format, "--write"], extra].concat()))
    }

    fn restore(&self, extra: &[&str]) -> Output {
        run_ok(&mut self.larder(&[&["--restore"], extra].concat()))
    }

    /// pip installs `fixture-wr` into a fresh venv reading only the
    /// configuration files (no PIP_CONFIG_FILE), and larder served it.
    /// pip with no PIP_CONFIG_FILE, so it reads the configuration files,
    /// and with a PATH of the venv and the system directories only: pip
    /// runs `rustc --version` for its User-Agent, and a rustup proxy on the
    /// inherited PATH would create ~/.rustup in the sandbox HOME.
    fn pip_reading_config_files(&self) -> Command {
        let mut cmd = self.clients.pip();
        let mut path = std::ffi::OsString::from(self.clients.venv().root().join("bin"));
        path.push(":/usr/bin:/bin");
        cmd.env_remove("PIP_CONFIG_FILE").env("PATH", path);
        cmd
    }

    #[track_caller]
    fn pip_installs_through_written_config(&self, name: &str) {
        let target = self.clients.target_venv(name);
        run_ok(self.pip_reading_config_files().arg("--python").arg(&target).args(["install", "fixture-wr"]));
        assert_eq!(installed_version(&self.clients, &target, "fixture-wr").as_deref(), Some("1.0"));
        self.assert_served();
    }

    /// uv installs `fixture-wr` reading its user configuration (no
    /// UV_NO_CONFIG, no UV_CONFIG_FILE), and larder served it.
    #[track_caller]
    fn uv_installs_through_written_config(&self, name: &str) {
        let target = self.clients.target_venv(name);
        run_ok(
            self.clients
                .uv()
                .env_remove("UV_NO_CONFIG")
                .args(["pip", "install", "--python"])
                .arg(&target)
                .arg("fixture-wr"),
        );
        assert_eq!(installed_version(&self.clients, &target, "fixture-wr").as_deref(), Some("1.0"));
        self.assert_served();
    }

    #[track_caller]
    fn assert_served(&self) {
        let wheel = "fixture_wr-1.0-py3-none-any.whl";
        let log = self
            .env
            .server
            .wait_for_log(Duration::from_secs(5), |log| log.iter().any(|r| r.path.ends_with(wheel) && r.status == 200));
        assert!(
            log.iter().any(|r| r.path.ends_with(wheel) && r.status == 200),
            "the wheel did not come from larder: {log:#?}"
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    let diff = before.diff(after);
    assert!(diff.is_empty(), "{what} changed after --restore:\n{}", diff.join("\n"));
}

#[track_caller]
fn assert_no_leftovers(roots: &[PathBuf]) {
    for root in roots {
        let left = larder_leftovers(root);
        assert!(left.is_empty(), "left behind under {}: {left:?}", root.display());
    }
}

// ------------------------------------------------------------- user: pip --

#[test]
fn pip_user_scope_restores_an_existing_file_byte_for_byte() {
    let s = Sandbox::new("wr-pip-existing");
    let path = s.xdg_config().join("pip/pip.conf");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, ORIGINAL_PIP).unwrap();
    set_mode(&path, 0o640);
    set_mode(path.parent().unwrap(), 0o700);
    let before = s.user_state();

    let out = s.write("pip", &s.url(), &[]);
    // Never clobber silently: the output names the file and its backup.
    assert!(stdout(&out).contains(&path.display().to_string()), "{}", describe_output(&out));
    assert!(stdout(&out).contains("larder-backup"), "{}", describe_output(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains(&format!("index-url = {}", s.url())), "{written}");
    s.pip_installs_through_written_config("after-write");

    // A second write (other content) keeps the first backup.
    let other = closed_index_url();
    s.write("pip", other.as_str(), &["--retries", "2"]);
    assert!(std::fs::read_to_string(&path).unwrap().contains(other.as_str()));

    let out = s.restore(&["--format", "pip"]);
    assert!(stdout(&out).contains("restored"), "{}", describe_output(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL_PIP);
    assert_eq!(mode(&path), 0o640);
    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);

    // Restoring again changes nothing.
    let out = s.restore(&["--format", "pip"]);
    assert!(stdout(&out).contains("nothing to restore"), "{}", describe_output(&out));
    assert_same(&before.1, &s.user_state().1, "XDG_CONFIG_HOME");
}

#[test]
fn pip_user_scope_removes_a_file_it_created_and_its_directory() {
    let s = Sandbox::new("wr-pip-absent");
    let path = s.xdg_config().join("pip/pip.conf");
    let before = s.user_state();
    assert!(!path.parent().unwrap().exists());

    s.write("pip", &s.url(), &[]);
    assert!(path.is_file());
    s.pip_installs_through_written_config("after-write");
    // Writing twice, then restoring once.
    s.write("pip", closed_index_url().as_str(), &[]);

    let out = s.restore(&["--format", "pip"]);
    assert!(stdout(&out).contains("removed"), "{}", describe_output(&out));
    assert!(!path.exists());
    assert!(!path.parent().unwrap().exists(), "the pip/ directory larder created is still there");
    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);
}

/// With XDG_CONFIG_HOME unset and no ~/.config at all, larder creates
/// ~/.config/pip/pip.conf (where pip reads it) and the restore removes
/// both directories it made.
#[test]
fn pip_user_scope_without_xdg_config_home_removes_every_directory_it_made() {
    let s = Sandbox::new("wr-pip-home");
    let before = Snapshot::of(&s.home());
    let path = s.home().join(".config/pip/pip.conf");

    run_ok(s.larder(&["--url", &s.url(), "--format", "pip", "--write"]).env_remove("XDG_CONFIG_HOME"));
    assert!(path.is_file(), "expected {}", path.display());
    let out = run_ok(s.pip_reading_config_files().env_remove("XDG_CONFIG_HOME").args(["config", "list"]));
    assert!(
        stdout(&out).contains(&format!("global.index-url='{}'", s.url())),
        "pip does not read the written file: {}",
        describe_output(&out)
    );

    run_ok(s.larder(&["--restore", "--format", "pip"]).env_remove("XDG_CONFIG_HOME"));
    assert!(!s.home().join(".config").exists(), "~/.config made by larder is still there");
    assert_same(&before, &Snapshot::of(&s.home()), "HOME");
}

// -------------------------------------------------------------- user: uv --

#[test]
fn uv_user_scope_restores_an_existing_file_byte_for_byte() {
    let s = Sandbox::new("wr-uv-existing");
    let path = s.xdg_config().join("uv/uv.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, ORIGINAL_UV).unwrap();
    set_mode(&path, 0o600);
    let before = s.user_state();

    let out = s.write("uv", &s.url(), &[]);
    assert!(stdout(&out).contains("larder-backup"), "{}", describe_output(&out));
    s.uv_installs_through_written_config("after-write");
    s.write("uv", closed_index_url().as_str(), &[]);

    s.restore(&["--format", "uv"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL_UV);
    assert_eq!(mode(&path), 0o600);
    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);
}

#[test]
fn uv_user_scope_removes_a_file_it_created_and_its_directory() {
    let s = Sandbox::new("wr-uv-absent");
    let path = s.xdg_config().join("uv/uv.toml");
    let before = s.user_state();

    s.write("uv", &s.url(), &[]);
    assert!(path.is_file());
    s.uv_installs_through_written_config("after-write");
    s.write("uv", closed_index_url().as_str(), &[]);

    s.restore(&["--format", "uv"]);
    assert!(!path.parent().unwrap().exists(), "the uv/ directory larder created is still there");
    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);
}

// ------------------------------------------------- user: all at once --

/// `--restore` without `--format` puts back every client's file of the
/// scope: an existing pip.conf and ~/.pypirc (a secret, mode 0600), and a
/// uv.toml that did not exist.
#[test]
fn restore_without_format_restores_every_client() {
    let s = Sandbox::new("wr-all");
    let pip = s.xdg_config().join("pip/pip.conf");
    std::fs::create_dir_all(pip.parent().unwrap()).unwrap();
    std::fs::write(&pip, ORIGINAL_PIP).unwrap();
    let pypirc = s.home().join(".pypirc");
    std::fs::write(&pypirc, ORIGINAL_PYPIRC).unwrap();
    set_mode(&pypirc, 0o600);
    let before = s.user_state();

    for format in ["pip", "uv", "pypirc"] {
        s.write(format, &s.url(), &[]);
    }
    assert!(std::fs::read_to_string(&pypirc).unwrap().contains("[larder]"));
    assert!(s.xdg_config().join("uv/uv.toml").is_file());

    s.restore(&[]);
    assert_eq!(std::fs::read_to_string(&pypirc).unwrap(), ORIGINAL_PYPIRC);
    assert_eq!(mode(&pypirc), 0o600);
    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);
}

/// A pip.conf that is a symbolic link (into a dotfiles checkout, say) is
/// still that link after write + restore, and the file it points to was
/// never changed.
#[test]
fn pip_user_scope_keeps_a_symlinked_config_a_symlink() {
    let s = Sandbox::new("wr-pip-symlink");
    let dotfiles = s.home().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("pip.conf"), ORIGINAL_PIP).unwrap();
    let path = s.xdg_config().join("pip/pip.conf");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../../home/dotfiles/pip.conf", &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL_PIP);
    let before = s.user_state();

    s.write("pip", &s.url(), &[]);
    s.restore(&["--format", "pip"]);

    let after = s.user_state();
    assert_same(&before.0, &after.0, "HOME (the dotfiles target)");
    assert_same(&before.1, &after.1, "XDG_CONFIG_HOME (the symlink)");
    assert_no_leftovers(&[s.home(), s.xdg_config()]);
}

// --------------------------------------------------------------- venv --

/// `--scope venv` writes `$VIRTUAL_ENV/pip.conf`, which pip run with that
/// venv's interpreter reads; the restore leaves the venv as it was.
#[test]
fn pip_venv_scope_round_trips_with_and_without_an_existing_file() {
    let s = Sandbox::new("wr-venv");
    for existing in [true, false] {
        let python = s.clients.target_venv(if existing { "venv-existing" } else { "venv-absent" });
        let venv = python.parent().unwrap().parent().unwrap().to_owned();
        let path = venv.join("pip.conf");
        if existing {
            std::fs::write(&path, ORIGINAL_PIP).unwrap();
            set_mode(&path, 0o604);
        }
        let before = Snapshot::of(&venv);
        let user_before = s.user_state();
        let in_venv = |args: &[&str]| {
            let mut cmd = s.larder(args);
            cmd.env("VIRTUAL_ENV", &venv);
            cmd
        };

        run_ok(&mut in_venv(&["--url", &s.url(), "--format", "pip", "--write", "--scope", "venv"]));
        assert!(std::fs::read_to_string(&path).unwrap().contains(&s.url()));
        let out = run_ok(s.pip_reading_config_files().arg("--python").arg(&python).args(["config", "list"]));
        assert!(
            stdout(&out).contains(&format!("global.index-url='{}'", s.url())),
            "pip in the venv does not read {}: {}",
            path.display(),
            describe_output(&out)
        );
        run_ok(&mut in_venv(&["--url", closed_index_url().as_str(), "--format", "pip", "--write", "--scope", "venv"]));
        run_ok(&mut in_venv(&["--restore", "--format", "pip", "--scope", "venv"]));

        assert_eq!(path.exists(), existing);
        if existing {
            assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL_PIP);
            assert_eq!(mode(&path), 0o604);
        }
        assert_same(&before, &Snapshot::of(&venv), "the venv");
        let user_after = s.user_state();
        assert_same(&user_before.0, &user_after.0, "HOME");
        assert_same(&user_before.1, &user_after.1, "XDG_CONFIG_HOME");
        assert_no_leftovers(std::slice::from_ref(&venv));
    }
}

/// The venv scope without VIRTUAL_ENV, and uv (which has no per-venv
/// file), are refused and write nothing.
#[test]
fn unsupported_scopes_are_refused_and_write_nothing() {
    let s = Sandbox::new("wr-refused");
    let python = s.clients.target_venv("venv");
    let venv = python.parent().unwrap().parent().unwrap().to_owned();
    let before = (Snapshot::of(&venv), s.user_state());

    run_fails(&mut s.larder(&["--url", &s.url(), "--format", "pip", "--write", "--scope", "venv"]));
    run_fails(s.larder(&["--url", &s.url(), "--format", "uv", "--write", "--scope", "venv"]).env("VIRTUAL_ENV", &venv));
    for format in ["env", "poetry", "pdm"] {
        run_fails(&mut s.larder(&["--url", &s.url(), "--format", format, "--write"]));
    }

    let after = (Snapshot::of(&venv), s.user_state());
    assert_same(&before.0, &after.0, "the venv");
    assert_same(&before.1.0, &after.1.0, "HOME");
    assert_same(&before.1.1, &after.1.1, "XDG_CONFIG_HOME");
}

/// `--restore --scope venv` outside the venv (VIRTUAL_ENV unset, say in a
/// new shell) cannot know which file to restore: like `--write --scope
/// venv`, it must say so and fail, not exit 0 having restored nothing
/// while the written pip.conf stays in the venv.
#[test]
fn restore_venv_scope_without_virtual_env_fails_loudly() {
    let s = Sandbox::new("wr-venv-unset");
    let python = s.clients.target_venv("venv");
    let venv = python.parent().unwrap().parent().unwrap().to_owned();
    run_ok(s.larder(&["--url", &s.url(), "--format", "pip", "--write", "--scope", "venv"]).env("VIRTUAL_ENV", &venv));
    assert!(venv.join("pip.conf").is_file());

    let out = run(&mut s.larder(&["--restore", "--format", "pip", "--scope", "venv"]));
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("VIRTUAL_ENV"),
        "--restore --scope venv without VIRTUAL_ENV should fail naming VIRTUAL_ENV; it did: {}",
        describe_output(&out)
    );
}
