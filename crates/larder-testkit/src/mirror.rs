//! Helpers for the ahead-of-time mirroring tests (`larder mirror`,
//! `verify`, `gc`, `export`, `import`):
//!
//! - [`SerialUpstream`]: a static PEP 691 upstream on `127.0.0.1:0`, run on
//!   std threads in the test process, whose `/simple/` lists every project
//!   with its `_last-serial` (as the public index does) and whose project
//!   pages carry `ETag`s. Projects can gain files, have files yanked, or be
//!   deleted while larder is stopped, each change bumping the serials. It
//!   counts the requests for every path ([`SerialUpstream::counts`]), can
//!   slow every file download down ([`SerialUpstream::set_file_delay`]) so
//!   a mirror run can be killed mid-way, can serve a file that does not
//!   match its hash ([`SerialUpstream::set_corrupt`]), and refuses
//!   connections once stopped ([`SerialUpstream::stop`]).
//! - [`Outcome`] / [`run_larder`]: a finished larder command with its
//!   output; [`ChildGuard`]: a larder command running in the background,
//!   killed (SIGKILL to its PID) on drop.
//! - Data-directory helpers: [`stored_digests`], [`blob_path`],
//!   [`set_mtime`], [`forget_core_metadata`]; [`bundle_entries`] lists the members of a plain-tar
//!   bundle.
//!
//! Everything talks to 127.0.0.1 only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::fixtures::{Built, DistKind, normalize};
use crate::hash::sha256_hex;
use crate::upstream::{Request, read_request};

// --------------------------------------------------------- SerialUpstream --

/// One file a [`SerialUpstream`] lists.
#[derive(Clone, Debug)]
struct Entry {
    built: Built,
    bytes: Arc<Vec<u8>>,
    requires_python: Option<String>,
    yanked: Option<String>,
}

#[derive(Debug, Default)]
struct Project {
    serial: u64,
    files: Vec<Entry>,
}

/// One request the upstream received.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Method.
    pub method: String,
    /// Request target as sent.
    pub path: String,
    /// `If-None-Match`, when sent.
    pub if_none_match: Option<String>,
    /// Status answered.
    pub status: u16,
    /// True once the whole answer was written.
    pub completed: bool,
}

struct State {
    projects: BTreeMap<String, Project>,
    serial: u64,
    serve_metadata: bool,
    file_delay: Duration,
    corrupt: BTreeSet<String>,
    hits: Vec<Hit>,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A static PEP 691 upstream with per-project serials; stops when dropped.
pub struct SerialUpstream {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl SerialUpstream {
    /// Starts an empty upstream (`.metadata` files served and advertised).
    pub fn start() -> SerialUpstream {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the upstream");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                projects: BTreeMap::new(),
                serial: 1000,
                serve_metadata: true,
                file_delay: Duration::ZERO,
                corrupt: BTreeSet::new(),
                hits: Vec::new(),
                stopped: false,
            }),
            addr,
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&shared, listener))
        };
        SerialUpstream { shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT/simple/`.
    pub fn simple_url(&self) -> String {
        format!("http://{}/simple/", self.shared.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The path of a project page: `/simple/<normalized>/`.
    pub fn page_path(project: &str) -> String {
        format!("/simple/{}/", normalize(project))
    }

    /// The path a file is served at: `/files/<sha256>/<filename>`.
    pub fn file_path(built: &Built) -> String {
        format!("/files/{}/{}", built.sha256, built.filename)
    }

    /// The path of a wheel's PEP 658 metadata.
    pub fn metadata_path(built: &Built) -> String {
        format!("{}.metadata", Self::file_path(built))
    }

    /// Serves and advertises PEP 658 `.metadata` for wheels (default on).
    pub fn set_serve_metadata(&self, serve: bool) {
        self.shared.lock().serve_metadata = serve;
    }

    /// Every file download sends half its body, waits `delay`, then the
    /// rest.
    pub fn set_file_delay(&self, delay: Duration) {
        self.shared.lock().file_delay = delay;
    }

    /// Serves `filename` with one byte changed (so it does not match its
    /// listed sha256) while `corrupt` is true.
    pub fn set_corrupt(&self, filename: &str, corrupt: bool) {
        let mut state = self.shared.lock();
        if corrupt {
            state.corrupt.insert(filename.to_owned());
        } else {
            state.corrupt.remove(filename);
        }
    }

    fn bump(state: &mut State, project: &str) {
        state.serial += 1;
        let serial = state.serial;
        state.projects.entry(project.to_owned()).or_default().serial = serial;
    }

    /// Lists a file (a new release or another file of one): the project's
    /// serial changes.
    pub fn add(&self, built: &Built) {
        self.add_with(built, None);
    }

    /// Lists a file with a `requires-python` on its page entry.
    pub fn add_with(&self, built: &Built, requires_python: Option<&str>) {
        let entry = Entry {
            built: built.clone(),
            bytes: Arc::new(built.bytes()),
            requires_python: requires_python.map(str::to_owned),
            yanked: None,
        };
        let mut state = self.shared.lock();
        let project = state.projects.entry(built.project.clone()).or_default();
        project.files.retain(|f| f.built.filename != built.filename);
        project.files.push(entry);
        Self::bump(&mut state, &built.project);
    }

    /// Adds many files at once (one serial per project).
    pub fn add_all(&self, files: &[Built]) {
        for built in files {
            self.add(built);
        }
    }

    /// Yanks `filename` with `reason`: its project's serial changes.
    pub fn yank(&self, filename: &str, reason: &str) {
        let mut state = self.shared.lock();
        let project = state
            .projects
            .iter_mut()
            .find(|(_, p)| p.files.iter().any(|f| f.built.filename == filename))
            .map(|(name, p)| {
                for f in p.files.iter_mut().filter(|f| f.built.filename == filename) {
                    f.yanked = Some(reason.to_owned());
                }
                name.clone()
            })
            .unwrap_or_else(|| panic!("no file {filename} to yank"));
        Self::bump(&mut state, &project);
    }

    /// Deletes a project: gone from the list, its page and files 404.
    pub fn delete_project(&self, project: &str) {
        let mut state = self.shared.lock();
        assert!(state.projects.remove(&normalize(project)).is_some(), "no project {project} to delete");
        state.serial += 1;
    }

    /// The names listed on `/simple/`.
    pub fn project_names(&self) -> Vec<String> {
        self.shared.lock().projects.keys().cloned().collect()
    }

    /// Every request so far, in order.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.lock().hits.clone()
    }

    /// Requests per path.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for hit in self.shared.lock().hits.iter() {
            *out.entry(hit.path.clone()).or_default() += 1;
        }
        out
    }

    /// Requests for exactly `path`.
    pub fn count(&self, path: &str) -> usize {
        self.shared.lock().hits.iter().filter(|h| h.path == path).count()
    }

    /// Requests in all.
    pub fn total(&self) -> usize {
        self.shared.lock().hits.len()
    }

    /// Forgets the requests seen so far.
    pub fn reset(&self) {
        self.shared.lock().hits.clear();
    }

    /// The requests seen, one per line, for messages.
    pub fn describe(&self) -> String {
        self.hits()
            .iter()
            .map(|h| {
                format!(
                    "{} {} -> {}{}{}",
                    h.method,
                    h.path,
                    h.status,
                    if h.completed { "" } else { " (not completed)" },
                    h.if_none_match.as_deref().map(|e| format!(" (If-None-Match {e})")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops listening: connections are refused from now on.
    pub fn stop(&mut self) {
        self.shared.lock().stopped = true;
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for SerialUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    loop {
        if shared.lock().stopped {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                std::thread::spawn(move || handle(&shared, stream));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

enum Answer {
    Full { status: u16, headers: Vec<(&'static str, String)>, body: Vec<u8> },
    File { body: Arc<Vec<u8>>, delay: Duration },
}

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

fn handle(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let answer = answer(shared, &request);
    let status = match &answer {
        Answer::Full { status, .. } => *status,
        Answer::File { .. } => 200,
    };
    let index = {
        let mut state = shared.lock();
        state.hits.push(Hit {
            method: request.method.clone(),
            path: request.path.clone(),
            if_none_match: request.if_none_match.clone(),
            status,
            completed: false,
        });
        state.hits.len() - 1
    };
    let head_only = request.method.eq_ignore_ascii_case("HEAD");
    let ok = match answer {
        Answer::Full { status, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                match status {
                    200 => "OK",
                    304 => "Not Modified",
                    404 => "Not Found",
                    _ => "Status",
                },
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).is_ok() && (head_only || status == 304 || stream.write_all(&body).is_ok())
        }
        Answer::File { body, delay } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let half = body.len() / 2;
            stream.write_all(head.as_bytes()).is_ok()
                && (head_only
                    || (stream.write_all(&body[..half]).is_ok()
                        && stream.flush().is_ok()
                        && {
                            std::thread::sleep(delay);
                            true
                        }
                        && stream.write_all(&body[half..]).is_ok()))
        }
    };
    let _ = stream.flush();
    if ok {
        shared.lock().hits[index].completed = true;
    }
}

fn text(status: u16, body: &str) -> Answer {
    Answer::Full { status, headers: vec![("Content-Type", "text/plain".to_owned())], body: body.as_bytes().to_vec() }
}

fn page(request: &Request, body: Vec<u8>, serial: u64) -> Answer {
    let etag = format!("\"{}\"", &sha256_hex(&body)[..24]);
    let matches = request.if_none_match.as_deref().is_some_and(|v| v.split(',').any(|c| c.trim() == etag));
    Answer::Full {
        status: if matches { 304 } else { 200 },
        headers: vec![
            ("Content-Type", JSON_TYPE.to_owned()),
            ("ETag", etag),
            ("Vary", "Accept".to_owned()),
            ("X-PyPI-Last-Serial", serial.to_string()),
        ],
        body,
    }
}

fn answer(shared: &Shared, request: &Request) -> Answer {
    let state = shared.lock();
    let path = request.path.split('?').next().unwrap_or("");
    let base = format!("http://{}", shared.addr);
    if path == "/simple/" {
        let projects: Vec<serde_json::Value> = state
            .projects
            .iter()
            .map(|(name, p)| serde_json::json!({"name": name, "_last-serial": p.serial}))
            .collect();
        let body = serde_json::json!({
            "meta": {"api-version": "1.1", "_last-serial": state.serial},
            "projects": projects,
        });
        return page(request, body.to_string().into_bytes(), state.serial);
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let name = rest.trim_end_matches('/');
        let Some(project) = state.projects.get(name).filter(|_| rest.ends_with('/')) else {
            return text(404, "no such project\n");
        };
        let files: Vec<serde_json::Value> = project
            .files
            .iter()
            .map(|f| {
                let mut entry = serde_json::json!({
                    "filename": f.built.filename,
                    "url": format!("{base}/files/{}/{}", f.built.sha256, f.built.filename),
                    "hashes": {"sha256": f.built.sha256},
                    "size": f.built.size,
                    "upload-time": "2024-01-02T03:04:05.123456Z",
                    "yanked": match &f.yanked {
                        None => serde_json::Value::Bool(false),
                        Some(r) if r.is_empty() => serde_json::Value::Bool(true),
                        Some(r) => serde_json::Value::String(r.clone()),
                    },
                });
                let metadata = match (&f.built.metadata, f.built.kind) {
                    (Some(m), DistKind::Wheel) if state.serve_metadata => {
                        serde_json::json!({"sha256": sha256_hex(m)})
                    }
                    _ => serde_json::Value::Bool(false),
                };
                entry["core-metadata"] = metadata.clone();
                entry["dist-info-metadata"] = metadata;
                if let Some(rp) = &f.requires_python {
                    entry["requires-python"] = rp.clone().into();
                }
                entry
            })
            .collect();
        let versions: BTreeSet<&str> = project.files.iter().map(|f| f.built.version.as_str()).collect();
        let body = serde_json::json!({
            "meta": {"api-version": "1.1", "_last-serial": project.serial},
            "name": name,
            "files": files,
            "versions": versions,
        });
        return page(request, body.to_string().into_bytes(), project.serial);
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        let Some((sha, filename)) = rest.split_once('/') else {
            return text(404, "not found\n");
        };
        let mut files = state.projects.values().flat_map(|p| p.files.iter());
        if let Some(dist) = filename.strip_suffix(".metadata") {
            return match files.find(|f| f.built.sha256 == sha && f.built.filename == dist) {
                Some(Entry { built: Built { metadata: Some(m), kind: DistKind::Wheel, .. }, .. })
                    if state.serve_metadata =>
                {
                    Answer::Full {
                        status: 200,
                        headers: vec![("Content-Type", "application/octet-stream".to_owned())],
                        body: m.clone(),
                    }
                }
                _ => text(404, "no metadata\n"),
            };
        }
        return match files.find(|f| f.built.sha256 == sha && f.built.filename == filename) {
            Some(f) if state.corrupt.contains(filename) => {
                let mut bytes = f.bytes.as_ref().clone();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                Answer::File { body: Arc::new(bytes), delay: state.file_delay }
            }
            Some(f) => Answer::File { body: Arc::clone(&f.bytes), delay: state.file_delay },
            None => text(404, "no such file\n"),
        };
    }
    text(404, "not found\n")
}

// ------------------------------------------------------ running commands --

/// A finished command.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line.
    pub command: String,
}

impl Outcome {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// For messages.
    pub fn describe(&self) -> String {
        format!("`{}`: {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.command, self.status, self.stdout, self.stderr)
    }

    /// Panics unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Outcome {
        assert!(self.status.success(), "command failed: {}", self.describe());
        self
    }

    /// Panics unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Outcome {
        assert_eq!(self.status.code(), Some(code), "unexpected exit: {}", self.describe());
        self
    }
}

/// Runs `cmd` to completion, capturing its output (in the shared setup,
/// on the shared store of its data directory: see [`crate::shared::join`]).
pub fn run_larder(cmd: &mut Command) -> Outcome {
    crate::shared::join(cmd);
    let command = crate::venv::describe_cmd(cmd);
    cmd.stdin(Stdio::null());
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    Outcome {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command,
    }
}

/// A command running in the background, its output going to files;
/// killed (SIGKILL to its PID) on drop unless it finished.
pub struct ChildGuard {
    child: Option<Child>,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
    command: String,
}

impl ChildGuard {
    /// Starts `cmd` (a larder command joins the shared setup's store: see
    /// [`crate::shared::join`]); the child also gets SIGKILL if the test
    /// thread dies.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        crate::shared::join(&mut cmd);
        let command = crate::venv::describe_cmd(&cmd);
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let err = tempfile::NamedTempFile::new().expect("temp file");
        cmd.stdin(Stdio::null()).stdout(out.reopen().expect("reopen")).stderr(err.reopen().expect("reopen"));
        crate::larder::die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        ChildGuard { child: Some(child), out, err, command }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Sends SIGKILL to its PID and reaps it.
    pub fn kill(&mut self) -> Outcome {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let status = child.wait().expect("wait");
        self.outcome(status)
    }

    /// Waits for it to finish.
    pub fn wait(&mut self) -> Outcome {
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait");
        self.outcome(status)
    }

    fn outcome(&self, status: ExitStatus) -> Outcome {
        Outcome {
            status,
            stdout: std::fs::read_to_string(self.out.path()).unwrap_or_default(),
            stderr: std::fs::read_to_string(self.err.path()).unwrap_or_default(),
            command: self.command.clone(),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------ data dirs --

/// Where the blob with this digest lives in a data directory.
pub fn blob_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir.join("blobs").join("sha256").join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
}

/// The digests (file names) of every blob stored in a data directory (in
/// the shared setup: in the bucket).
pub fn stored_digests(data_dir: &Path) -> BTreeSet<String> {
    if let Some(place) = crate::shared::place_of(data_dir) {
        return place.digests().into_iter().collect();
    }
    crate::proxy::blob_paths(data_dir)
        .iter()
        .map(|path| path.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect()
}

/// Makes a data dir (SQLite metadata, blobs on disk) look as if larder had
/// stored these wheels and crashed before extracting their core metadata:
/// the metadata blobs deleted, every file row's metadata cleared.
pub fn forget_core_metadata(data_dir: &Path, wheels: &[Built]) {
    for built in wheels {
        let digest = built.core_metadata_sha256().expect("a wheel with METADATA");
        std::fs::remove_file(blob_path(data_dir, &digest)).unwrap_or_else(|e| panic!("removing {digest}: {e}"));
    }
    let sql = "UPDATE files SET metadata_sha256 = NULL, serve_metadata = 0";
    let status = Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
        .arg(data_dir.join("larder.db"))
        .arg(sql)
        .status()
        .expect("run python3");
    assert!(status.success(), "clearing the metadata columns failed");
}

/// Sets a file's modification time.
pub fn set_mtime(path: &Path, time: SystemTime) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.set_modified(time).unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

/// The member names of a plain (uncompressed) tar bundle, in order.
pub fn bundle_entries(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .map(|entry| entry.expect("tar entry").path().expect("entry path").to_string_lossy().into_owned())
        .collect()
}
