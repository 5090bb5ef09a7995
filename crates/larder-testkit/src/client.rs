//! Helpers for the client-side tests (`larder client-config`, `larder
//! exec`, `larder serve --tls-cert`):
//!
//! - [`BackendSdist`]: an sdist whose PEP 517 backend is NOT in the tree but
//!   comes from an index, as a build dependency shipped in a fixture wheel
//!   ([`BackendSdist::backend_wheel`]): installing it proves that the build
//!   isolation environment used the same index;
//! - [`ServeProcess`]: a guard around `larder serve` that accepts an
//!   `https://` listening line (the [`crate::Server`] guard expects
//!   `http://`), with the same JSON request log and kill-on-drop;
//! - [`closed_port`] / [`closed_index_url`]: a loopback URL nothing listens
//!   on, for "a wrong URL makes the install fail";
//! - [`Snapshot`]: every path, kind, permission bits and content under a
//!   directory, to prove `--write` then `--restore` left nothing changed;
//! - [`strip_ansi`], [`installed_version`]: output and result checks.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use crate::fixtures::{Built, DistKind, Sdist, Wheel, escape_name, normalize};
use crate::hash::sha256_hex;
use crate::larder::{Larder, RequestLog};
use crate::venv::{Clients, run};

// ------------------------------------------------------------ closed port --

/// A loopback port nothing listens on (bound, then released: connecting to
/// it is refused at once).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    port
}

/// `http://127.0.0.1:<closed port>/simple/`: a wrong larder URL.
pub fn closed_index_url() -> Url {
    Url::parse(&format!("http://127.0.0.1:{}/simple/", closed_port())).unwrap()
}

// ---------------------------------------------------------- BackendSdist --

/// An sdist whose `pyproject.toml` says
///
/// ```toml
/// [build-system]
/// requires = ["<backend project>"]
/// build-backend = "<backend module>"
/// ```
///
/// with no `backend-path` and no backend in the archive: the backend module
/// exists only in the wheel made by [`BackendSdist::backend_wheel`] (the
/// testkit's `fixture_backend.py`, standard library only), so the sdist
/// builds only if the installer fetched that wheel from its index into the
/// build environment.
///
/// Layout of `{escaped}-{version}.tar.gz`: `PKG-INFO`, `pyproject.toml`,
/// `{escaped}/__init__.py`.
#[derive(Clone, Debug)]
pub struct BackendSdist {
    name: String,
    version: String,
    backend_project: String,
    backend_module: String,
    /// Supplies `PKG-INFO`, the filename and the backend source.
    base: Sdist,
}

impl BackendSdist {
    /// An sdist of `name` `version` built by module `backend_module` of the
    /// project `backend_project` (a requirement name, fetched from the
    /// index).
    pub fn new(name: &str, version: &str, backend_project: &str, backend_module: &str) -> BackendSdist {
        BackendSdist {
            name: name.to_owned(),
            version: version.to_owned(),
            backend_project: backend_project.to_owned(),
            backend_module: backend_module.to_owned(),
            base: Sdist::new(name, version),
        }
    }

    /// `{escaped}-{version}.tar.gz`.
    pub fn filename(&self) -> String {
        self.base.filename()
    }

    /// The importable package of the sdist.
    pub fn module_name(&self) -> String {
        self.base.module_name()
    }

    /// The `pyproject.toml` text.
    pub fn pyproject_text(&self) -> String {
        format!(
            "[build-system]\nrequires = [\"{}\"]\nbuild-backend = \"{}\"\n",
            self.backend_project, self.backend_module
        )
    }

    /// The wheel of the backend project, version `version`: a `py3-none-any`
    /// wheel holding the top-level module `<backend module>.py` (the
    /// testkit's `fixture_backend.py`, set up to build this sdist) besides
    /// its own package.
    pub fn backend_wheel(&self, version: &str) -> Wheel {
        Wheel::new(&self.backend_project, version)
            .summary("larder test fixture: a PEP 517 backend served by the index")
            .extra_file(&format!("{}.py", self.backend_module), self.base.backend_source().as_bytes())
    }

    fn module_source(&self) -> String {
        format!(
            "\"\"\"larder test fixture {name}.\"\"\"\n__version__ = \"{version}\"\nPROJECT = \"{name}\"\nBUILT_BY = \"{backend}\"\n",
            name = self.name,
            version = self.version,
            backend = self.backend_project,
        )
    }

    /// The sdist as bytes (deterministic).
    pub fn to_bytes(&self) -> Vec<u8> {
        let base = format!("{}-{}", escape_name(&self.name), self.version);
        let module = self.module_name();
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut entry = |path: &str, data: Option<&[u8]>| {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(1_577_836_800);
            match data {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, path, io::empty()).expect("tar dir");
                }
                Some(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, path, data).expect("tar file");
                }
            }
        };
        entry(&format!("{base}/"), None);
        entry(&format!("{base}/PKG-INFO"), Some(self.base.pkg_info_text().as_bytes()));
        entry(&format!("{base}/pyproject.toml"), Some(self.pyproject_text().as_bytes()));
        entry(&format!("{base}/{module}/"), None);
        entry(&format!("{base}/{module}/__init__.py"), Some(self.module_source().as_bytes()));
        tar.into_inner().expect("tar finish").finish().expect("gzip finish")
    }

    /// Writes the sdist into `dir` (created if needed) and describes it.
    pub fn build(&self, dir: &Path) -> Built {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let filename = self.filename();
        let path = dir.join(&filename);
        let bytes = self.to_bytes();
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Built {
            path,
            filename,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            kind: DistKind::Sdist,
            project: normalize(&self.name),
            version: self.version.clone(),
            metadata: Some(self.base.pkg_info_text().into_bytes()),
        }
    }
}

// ----------------------------------------------------------- ServeProcess --

/// A running `larder serve --listen 127.0.0.1:0 --log-format json ...`
/// whose first stdout line may name an `http://` or `https://` URL; killed
/// (SIGKILL to its PID) on drop.
pub struct ServeProcess {
    child: Child,
    first_line: String,
    base: Url,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl ServeProcess {
    /// Starts `larder serve --data-dir DIR --listen 127.0.0.1:0 --log-format
    /// json EXTRA...` with [`Larder::command`]'s clean environment and waits
    /// for the listening line.
    pub fn start(larder: &Larder, data_dir: &Path, extra_args: &[&str]) -> ServeProcess {
        let started = crate::larder::start_serve(larder.serve_command(data_dir, extra_args));
        let (line, command) = (started.first_line, started.command);
        let mut server = ServeProcess {
            child: started.child,
            first_line: String::new(),
            base: Url::parse("http://127.0.0.1/").unwrap(),
            stderr: started.stderr,
        };
        let url_text = line
            .trim_end()
            .strip_prefix("larder listening on ")
            .unwrap_or_else(|| panic!("`{command}`: bad first stdout line {line:?}"));
        server.base = Url::parse(url_text).unwrap_or_else(|e| panic!("`{command}`: {url_text:?}: {e}"));
        assert_ne!(server.base.port_or_known_default(), Some(0), "port 0 printed: {line:?}");
        server.first_line = line;
        server
    }

    /// The first stdout line, newline included.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// The base URL printed (`http(s)://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The absolute URL of `path` (e.g. `/simple/`).
    pub fn url(&self, path: &str) -> Url {
        crate::http::resolve(&self.base, path)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.base.host_str().unwrap().parse().expect("IP host"), self.base.port().expect("port"))
    }

    /// Everything written to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The request log so far (the JSON lines whose `fields.message` is
    /// `"request"`).
    pub fn request_log(&self) -> Vec<RequestLog> {
        crate::larder::parse_request_log(&self.stderr_text())
    }

    /// Polls the request log until `done` holds or `timeout` passes.
    pub fn wait_for_log(&self, timeout: Duration, done: impl Fn(&[RequestLog]) -> bool) -> Vec<RequestLog> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.request_log();
            if done(&log) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- larder serve (pid {pid}) stderr ---\n{}", self.stderr_text());
        }
    }
}

// --------------------------------------------------------------- Snapshot --

/// One filesystem entry of a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory and its permission bits.
    Dir {
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// A regular file, its permission bits and bytes.
    File {
        /// `st_mode & 0o7777`.
        mode: u32,
        /// The content.
        bytes: Vec<u8>,
    },
    /// A symbolic link (not followed) and where it points.
    Symlink {
        /// The link's target as stored.
        target: PathBuf,
    },
}

/// Every entry under a directory (relative path → [`Node`]), the root
/// itself included as `""`; a missing root is an empty snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Node>);

impl Snapshot {
    /// Reads the tree under `root` without following symbolic links.
    pub fn of(root: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        if std::fs::symlink_metadata(root).is_ok() {
            walk(root, Path::new(""), &mut map);
        }
        Snapshot(map)
    }

    /// The paths (relative) that differ between `self` and `other`, each
    /// with a short description, for messages.
    pub fn diff(&self, other: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, node) in &self.0 {
            match other.0.get(path) {
                None => out.push(format!("{}: gone (was {})", path.display(), describe(node))),
                Some(o) if o != node => {
                    out.push(format!("{}: was {}, now {}", path.display(), describe(node), describe(o)))
                }
                _ => {}
            }
        }
        for (path, node) in &other.0 {
            if !self.0.contains_key(path) {
                out.push(format!("{}: new ({})", path.display(), describe(node)));
            }
        }
        out
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir { mode } => format!("dir {mode:o}"),
        Node::File { mode, bytes } => {
            format!("file {mode:o} {} bytes {:?}", bytes.len(), String::from_utf8_lossy(&bytes[..bytes.len().min(120)]))
        }
        Node::Symlink { target } => format!("symlink -> {}", target.display()),
    }
}

fn walk(path: &Path, rel: &Path, map: &mut BTreeMap<PathBuf, Node>) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).unwrap();
        map.insert(rel.to_owned(), Node::Symlink { target });
    } else if meta.is_dir() {
        map.insert(rel.to_owned(), Node::Dir { mode });
        let mut entries: Vec<_> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name()).collect();
        entries.sort();
        for name in entries {
            walk(&path.join(&name), &rel.join(&name), map);
        }
    } else {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        map.insert(rel.to_owned(), Node::File { mode, bytes });
    }
}

/// Every path under `root` whose name contains `.larder-` (backups,
/// markers, temporary files of `client-config --write`).
pub fn larder_leftovers(root: &Path) -> Vec<PathBuf> {
    Snapshot::of(root)
        .0
        .into_keys()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".larder-")))
        .collect()
}

// ---------------------------------------------------------------- checks --

/// `text` without ANSI escape sequences (twine colours its errors).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The version of distribution `dist` installed in `python`'s environment,
/// or `None`.
pub fn installed_version(clients: &Clients, python: &Path, dist: &str) -> Option<String> {
    let script = format!(
        "import importlib.metadata as m\ntry:\n    print(m.version({dist:?}))\nexcept m.PackageNotFoundError:\n    print('')\n"
    );
    let out = run(clients.command(python).arg("-c").arg(script));
    assert!(out.status.success(), "{}", crate::venv::describe_output(&out));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\u{1b}[31mERROR   \u{1b}[0m HTTPError"), "ERROR    HTTPError");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn backend_sdist_has_no_in_tree_backend() {
        let dir = tempfile::tempdir().unwrap();
        let sdist = BackendSdist::new("fixture-built", "1.0", "fixture-backend-pkg", "fixture_backend");
        let built = sdist.build(dir.path());
        assert_eq!(built.filename, "fixture_built-1.0.tar.gz");
        assert_eq!(built.bytes(), sdist.to_bytes(), "deterministic");
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&built.path).unwrap());
        let mut archive = tar::Archive::new(gz);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name.ends_with("pyproject.toml") {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                assert!(text.contains("requires = [\"fixture-backend-pkg\"]"), "{text}");
                assert!(!text.contains("backend-path"), "{text}");
            }
            names.push(name);
        }
        assert!(!names.iter().any(|n| n.contains("_backend")), "{names:?}");
        let wheel = sdist.backend_wheel("1.0").build(dir.path());
        let zip = zip::ZipArchive::new(std::fs::File::open(&wheel.path).unwrap()).unwrap();
        assert!(zip.file_names().any(|n| n.is_ok_and(|n| n == "fixture_backend.py")));
    }

    #[test]
    fn snapshot_sees_modes_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let before = Snapshot::of(dir.path());
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b.larder-backup")).unwrap();
        let after = Snapshot::of(dir.path());
        assert_eq!(before.diff(&after).len(), 2, "{:?}", before.diff(&after));
        assert_eq!(larder_leftovers(dir.path()), vec![PathBuf::from("b.larder-backup")]);
        assert!(Snapshot::of(&dir.path().join("missing")).0.is_empty());
    }
}
