//! The pinned Python tools (pip, uv, twine) of the test venv, and commands
//! that run them isolated from the user's configuration.
//!
//! `scripts/test` creates `.venv-test/` with the versions pinned in
//! `scripts/test-requirements.txt` and exports its path as
//! `LARDER_TEST_VENV`. A test that needs a tool and finds it missing fails
//! (it is never skipped) with a message saying to run `scripts/test`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The variable naming the test venv.
pub const VENV_VAR: &str = "LARDER_TEST_VENV";

/// The test venv made by `scripts/test`.
#[derive(Clone, Debug)]
pub struct TestVenv {
    root: PathBuf,
}

fn missing(what: &str) -> ! {
    panic!(
        "run scripts/test (LARDER_TEST_VENV not set / tool missing): {what}. \
         scripts/test creates .venv-test/ with the pinned pip, uv and twine and runs cargo test with \
         LARDER_TEST_VENV pointing at it; to run one test by hand: \
         scripts/test --venv-only && LARDER_TEST_VENV=$PWD/.venv-test cargo test ..."
    )
}

impl TestVenv {
    /// The venv named by `LARDER_TEST_VENV`; panics if it is unset or lacks
    /// `python`, `uv` or `twine`.
    pub fn from_env() -> TestVenv {
        let Some(root) = std::env::var_os(VENV_VAR).filter(|v| !v.is_empty()) else {
            missing("LARDER_TEST_VENV is not set")
        };
        let venv = TestVenv { root: PathBuf::from(root) };
        for tool in [venv.python(), venv.uv(), venv.twine()] {
            if !tool.is_file() {
                missing(&format!("{} does not exist", tool.display()));
            }
        }
        venv
    }

    /// The venv's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The venv's Python interpreter (run pip as `python -m pip`).
    pub fn python(&self) -> PathBuf {
        self.root.join("bin").join("python")
    }

    /// The venv's `uv` executable.
    pub fn uv(&self) -> PathBuf {
        self.root.join("bin").join("uv")
    }

    /// The venv's `twine` executable.
    pub fn twine(&self) -> PathBuf {
        self.root.join("bin").join("twine")
    }

    /// The venv's executable `name`, one of the publishing tools pinned in
    /// scripts/test-requirements.txt (poetry, pdm, flit); panics, saying how
    /// to get it, when the venv predates it.
    pub fn pinned_tool(&self, name: &str) -> PathBuf {
        let tool = self.root.join("bin").join(name);
        if !tool.is_file() {
            missing(&format!("{} does not exist (scripts/test-requirements.txt pins {name})", tool.display()));
        }
        tool
    }
}

/// The tools of the test venv plus per-test state (caches, `HOME`, a work
/// directory), all in a temporary directory removed on drop.
///
/// Every command it makes starts from an empty environment, so nothing
/// inherited (`PIP_INDEX_URL`, `UV_INDEX`, `VIRTUAL_ENV`, config files in
/// `HOME`, ...) can point a client somewhere else:
///
/// - pip: `PIP_CONFIG_FILE=/dev/null`, `PIP_NO_INPUT=1`,
///   `PIP_DISABLE_PIP_VERSION_CHECK=1`, a private `PIP_CACHE_DIR`, keyring
///   disabled;
/// - uv: a private `UV_CACHE_DIR`, `UV_NO_CONFIG=1`,
///   `UV_PYTHON_DOWNLOADS=never`, `UV_PYTHON` = the venv's python;
/// - proxies: `HTTP(S)_PROXY` / `ALL_PROXY` point at a closed port on
///   127.0.0.1 with `NO_PROXY=127.0.0.1,localhost`, so a request meant for
///   any other host fails at once instead of leaving the machine.
pub struct Clients {
    venv: TestVenv,
    state: TempDir,
}

impl Clients {
    /// Locates the test venv (panicking with a hint if absent) and makes
    /// fresh, empty caches.
    pub fn new() -> Clients {
        let venv = TestVenv::from_env();
        let state = tempfile::Builder::new().prefix("larder-clients-").tempdir().expect("temp dir");
        for sub in ["home", "pip-cache", "uv-cache", "work", "tmp", "xdg-config", "xdg-cache", "xdg-data"] {
            std::fs::create_dir_all(state.path().join(sub)).expect("state dir");
        }
        Clients { venv, state }
    }

    /// The test venv.
    pub fn venv(&self) -> &TestVenv {
        &self.venv
    }

    /// The per-test state directory.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The working directory commands run in (empty, per test).
    pub fn work_dir(&self) -> PathBuf {
        self.state.path().join("work")
    }

    /// uv's private cache directory.
    pub fn uv_cache_dir(&self) -> PathBuf {
        self.state.path().join("uv-cache")
    }

    /// pip's private cache directory.
    pub fn pip_cache_dir(&self) -> PathBuf {
        self.state.path().join("pip-cache")
    }

    /// A command for `program` with the isolated environment described on
    /// [`Clients`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let s = self.state.path();
        let mut cmd = Command::new(program);
        cmd.env_clear();
        let mut path = std::ffi::OsString::from(self.venv.root().join("bin"));
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        cmd.env("PATH", path)
            .env("HOME", s.join("home"))
            .env("TMPDIR", s.join("tmp"))
            .env("XDG_CONFIG_HOME", s.join("xdg-config"))
            .env("XDG_CACHE_HOME", s.join("xdg-cache"))
            .env("XDG_DATA_HOME", s.join("xdg-data"))
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
            // Anything that tries to leave this machine meets a closed
            // loopback port instead: tests talk only to 127.0.0.1.
            .envs(crate::larder::DEAD_PROXY_ENV.iter().copied())
            // pip
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_CACHE_DIR", s.join("pip-cache"))
            .env("PIP_KEYRING_PROVIDER", "disabled")
            .env("PIP_PROGRESS_BAR", "off")
            .env("PIP_NO_COLOR", "1")
            // uv
            .env("UV_CACHE_DIR", s.join("uv-cache"))
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_PYTHON", self.venv.python())
            .env("UV_NO_PROGRESS", "1")
            .env("UV_KEYRING_PROVIDER", "disabled")
            .env("UV_LINK_MODE", "copy")
            .current_dir(s.join("work"));
        cmd
    }

    /// The venv's Python.
    pub fn python(&self) -> Command {
        self.command(self.venv.python())
    }

    /// `python -m pip` of the venv. Install into another environment with
    /// `--python <that env's python>` (pip's own option), never into the
    /// test venv itself.
    pub fn pip(&self) -> Command {
        let mut cmd = self.python();
        cmd.arg("-m").arg("pip");
        cmd
    }

    /// The venv's `uv`.
    pub fn uv(&self) -> Command {
        self.command(self.venv.uv())
    }

    /// The venv's `twine`.
    pub fn twine(&self) -> Command {
        self.command(self.venv.twine())
    }

    /// The venv's `poetry`.
    pub fn poetry(&self) -> Command {
        self.command(self.venv.pinned_tool("poetry"))
    }

    /// The venv's `pdm` (its update check off).
    pub fn pdm(&self) -> Command {
        let mut cmd = self.command(self.venv.pinned_tool("pdm"));
        cmd.env("PDM_CHECK_UPDATE", "false");
        cmd
    }

    /// The venv's `flit`.
    pub fn flit(&self) -> Command {
        self.command(self.venv.pinned_tool("flit"))
    }

    /// Creates an empty target virtualenv (no pip in it) named `name` in the
    /// state directory with `uv venv`, and returns its python.
    pub fn target_venv(&self, name: &str) -> PathBuf {
        let dir = self.state.path().join(name);
        let mut cmd = self.uv();
        cmd.arg("venv").arg("--python").arg(self.venv.python()).arg(&dir);
        run_ok(&mut cmd);
        let python = dir.join("bin").join("python");
        assert!(python.exists(), "uv venv did not create {}", python.display());
        python
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

/// Runs `cmd` to completion and returns its output (never panics on a
/// non-zero exit). A larder command joins the shared setup's store of its
/// data directory (see [`crate::shared::join`]).
pub fn run(cmd: &mut Command) -> Output {
    crate::shared::join(cmd);
    cmd.stdin(std::process::Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/test to set up the tools)"))
}

/// Runs `cmd` and panics, showing its output, unless it exits 0.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "command failed: {}\n{}", describe_cmd(cmd), describe_output(&out));
    out
}

/// Runs `cmd` and panics, showing its output, if it exits 0.
#[track_caller]
pub fn run_fails(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(!out.status.success(), "command unexpectedly succeeded: {}\n{}", describe_cmd(cmd), describe_output(&out));
    out
}

/// A command line for messages.
pub fn describe_cmd(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Exit status, stdout and stderr, for messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
