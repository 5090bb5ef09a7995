//! Running the `larder` binary: `larder add` as a one-shot command and
//! `larder serve` behind a guard that kills the process (by its PID) when
//! the test ends, pass or fail.

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use crate::balancer::Balancer;
use crate::http::{self, Request, Response};

/// Proxy variables that send every request not for 127.0.0.1 / localhost to
/// a closed port on 127.0.0.1 (the discard port), so nothing a test runs can
/// reach another host.
pub const DEAD_PROXY_ENV: &[(&str, &str)] = &[
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("all_proxy", "http://127.0.0.1:9"),
    ("NO_PROXY", "127.0.0.1,localhost"),
    ("no_proxy", "127.0.0.1,localhost"),
];

/// How long `larder serve` may take to print its listening line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The `larder` executable under test.
///
/// In the integration tests of the `larder` crate, make it with
/// `Larder::new(env!("CARGO_BIN_EXE_larder"))`.
#[derive(Clone, Debug)]
pub struct Larder {
    bin: PathBuf,
    /// `HOME` and XDG directories for the process: empty, so no user or
    /// machine configuration (larder's, pip's) reaches the tests.
    home: Arc<tempfile::TempDir>,
}

/// What a finished `larder add` did.
#[derive(Debug)]
pub struct AddOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl AddOutput {
    /// Panics, showing the output, unless `larder add` exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &AddOutput {
        assert!(self.status.success(), "`{}` failed: {}", self.command, self.describe());
        self
    }

    /// Panics, showing the output, unless `larder add` exited non-zero.
    #[track_caller]
    pub fn assert_failure(&self) -> &AddOutput {
        assert!(!self.status.success(), "`{}` should have failed: {}", self.command, self.describe());
        assert!(self.status.code().is_some(), "`{}` died of a signal: {}", self.command, self.describe());
        self
    }

    /// Status, stdout and stderr, for messages.
    pub fn describe(&self) -> String {
        format!("status {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.status, self.stdout, self.stderr)
    }
}

impl Larder {
    /// The binary at `bin` (panics if it does not exist).
    pub fn new(bin: impl Into<PathBuf>) -> Larder {
        let bin = bin.into();
        assert!(bin.is_file(), "larder binary not found at {}", bin.display());
        let home = tempfile::Builder::new().prefix("larder-home-").tempdir().expect("temp dir");
        for sub in ["home", "config", "cache", "data", "config-dirs"] {
            std::fs::create_dir_all(home.path().join(sub)).expect("temp home");
        }
        Larder { bin, home: Arc::new(home) }
    }

    /// Path of the binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A command for the binary with a clean environment for it, so that
    /// nothing on the machine can point it at a real index: every inherited
    /// `LARDER_*`, `PIP_*` and `UV_*` variable, `RUST_LOG` and systemd's
    /// `NOTIFY_SOCKET` / `LISTEN_*` removed,
    /// `PIP_CONFIG_FILE=/dev/null`, `HOME` / `XDG_*` pointing into an
    /// empty temporary directory, and the proxies of [`DEAD_PROXY_ENV`]. Set `LARDER_TEST_RUST_LOG` to pass a
    /// `RUST_LOG` through for debugging.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("LARDER_")
                || k.starts_with("PIP_")
                || k.starts_with("UV_")
                || k == "RUST_LOG"
                || matches!(&*k, "SSL_CERT_FILE" | "SSL_CERT_DIR" | "REQUESTS_CA_BUNDLE" | "CURL_CA_BUNDLE")
                || matches!(&*k, "NOTIFY_SOCKET" | "LISTEN_FDS" | "LISTEN_PID" | "LISTEN_FDNAMES")
            {
                cmd.env_remove(&key);
            }
        }
        let home = self.home.path();
        // No pip configuration, and no asking pip for its default index: a
        // larder with no upstream serves local packages only.
        cmd.env("PIP_CONFIG_FILE", "/dev/null")
            .env("LARDER_PIP_PYTHON", "")
            .env("HOME", home.join("home"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_DIRS", home.join("config-dirs"))
            .envs(DEAD_PROXY_ENV.iter().copied());
        if let Some(filter) = std::env::var_os("LARDER_TEST_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The `larder add --data-dir DIR PATHS...` command.
    pub fn add_command<P: AsRef<Path>>(&self, data_dir: &Path, paths: &[P]) -> Command {
        let mut cmd = self.command();
        cmd.arg("add").arg("--data-dir").arg(data_dir);
        for p in paths {
            cmd.arg(p.as_ref());
        }
        cmd
    }

    /// Runs `larder add --data-dir DIR PATHS...` to completion.
    pub fn add<P: AsRef<Path>>(&self, data_dir: &Path, paths: &[P]) -> AddOutput {
        let mut cmd = self.add_command(data_dir, paths);
        crate::shared::join(&mut cmd);
        let command = crate::venv::describe_cmd(&cmd);
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        AddOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    /// Starts `larder add` without waiting for it (for concurrency tests).
    pub fn spawn_add<P: AsRef<Path>>(&self, data_dir: &Path, paths: &[P]) -> AddProcess {
        let mut cmd = self.add_command(data_dir, paths);
        crate::shared::join(&mut cmd);
        let command = crate::venv::describe_cmd(&cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        AddProcess { child: Some(child), command }
    }

    /// Starts `larder serve --data-dir DIR --listen 127.0.0.1:0
    /// --log-format json` and waits for its listening line.
    pub fn serve(&self, data_dir: &Path) -> Server {
        self.serve_with(data_dir, &[])
    }

    /// Like [`Larder::serve`] with extra arguments after the standard ones.
    pub fn serve_with(&self, data_dir: &Path, extra_args: &[&str]) -> Server {
        self.serve_with_env(data_dir, extra_args, &[])
    }

    /// `larder serve --data-dir DIR --listen 127.0.0.1:0 --log-format json
    /// EXTRA...` with the clean environment of [`Larder::command`], its
    /// output piped.
    pub fn serve_command(&self, data_dir: &Path, extra_args: &[&str]) -> Command {
        self.serve_command_on(data_dir, "127.0.0.1:0", extra_args)
    }

    /// Like [`Larder::serve_command`], listening on `listen` (`IP:PORT` or
    /// `unix:PATH`).
    pub fn serve_command_on(&self, data_dir: &Path, listen: &str, extra_args: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", listen, "--log-format", "json"])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        cmd
    }

    /// Like [`Larder::serve_with`], with environment variables set on top
    /// of the clean environment of [`Larder::command`] (e.g.
    /// `PIP_INDEX_URL`, or `PIP_CONFIG_FILE` pointing at a test's file).
    pub fn serve_with_env(&self, data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = self.serve_command(data_dir, extra_args);
        cmd.envs(env.iter().copied());
        Server::start(cmd)
    }

    /// Like [`Larder::serve_with`], in a child whose open-file limit is
    /// `soft` (what `ulimit -Sn` sets) under a hard limit of `hard`.
    pub fn serve_with_open_files(&self, data_dir: &Path, extra_args: &[&str], soft: u64, hard: u64) -> Server {
        let mut cmd = self.serve_command(data_dir, extra_args);
        limit_open_files(&mut cmd, soft, hard);
        Server::start(cmd)
    }
}

impl Server {
    /// Starts a `larder serve` command from [`Larder::serve_command`] and
    /// reads its listening line. In the shared setup (see
    /// [`crate::shared`]) it runs as several nodes, each with a data
    /// directory of its own, on the shared store of its data directory,
    /// behind a round-robin [`Balancer`]: the guard's address is the
    /// balancer's, its logs are every node's (line by line).
    fn start(mut cmd: Command) -> Server {
        if !crate::shared::join(&mut cmd) {
            return Self::started(start_serve(cmd));
        }
        let dirs: Vec<tempfile::TempDir> =
            (1..crate::shared::node_count()).map(|i| crate::temp_dir(&format!("node{}", i + 1))).collect();
        let twins: Vec<Command> = dirs.iter().map(|dir| node_command(&cmd, dir.path())).collect();
        let (stderr, stdout) = (Arc::default(), Arc::default());
        let spawned: Vec<SpawnedServe> =
            std::iter::once(cmd).chain(twins).map(|cmd| spawn_serve_into(cmd, &stderr, &stdout)).collect();
        let mut nodes = spawned.into_iter().map(|spawned| Self::started(spawned.listening()));
        let mut first = nodes.next().expect("the first node");
        let others: Vec<Server> = nodes
            .map(|mut other| {
                other.shows_log = false;
                other
            })
            .collect();
        let balancer = Balancer::start(std::iter::once(&first).chain(&others).map(Server::addr).collect());
        let first_addr = first.addr;
        first.addr = balancer.addr();
        first.base = format!("http://{}/", balancer.addr()).parse().expect("the balancer's URL");
        first.peers = Some(Peers { first: first_addr, others, _dirs: dirs, _balancer: balancer });
        first
    }

    /// Starts several `larder serve` commands from
    /// [`Larder::serve_command`] at once, so their start-ups overlap (nodes
    /// starting together), and reads each one's listening line.
    pub fn start_all(cmds: impl IntoIterator<Item = Command>) -> Vec<Server> {
        let spawned: Vec<SpawnedServe> = cmds.into_iter().map(spawn_serve).collect();
        spawned.into_iter().map(|spawned| Self::started(spawned.listening())).collect()
    }

    fn started(started: StartedServe) -> Server {
        let line = started.first_line.clone();
        let command = started.command.clone();
        let mut server = Server {
            pid: started.child.id(),
            child: started.child,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            base: Url::parse("http://127.0.0.1/").unwrap(),
            stderr: started.stderr,
            stdout: started.stdout,
            peers: None,
            shows_log: true,
        };
        let (addr, base) = parse_listening_line(&line).unwrap_or_else(|why| {
            panic!("`{command}`: bad first stdout line {line:?}: {why}\n--- stderr ---\n{}", server.stderr_text())
        });
        server.addr = addr;
        server.base = base;
        server
    }
}

/// The nodes of a [`Server`] in the shared setup besides the first, their
/// data directories and the balancer in front of them all.
struct Peers {
    /// The first node's own address.
    first: SocketAddr,
    others: Vec<Server>,
    _dirs: Vec<tempfile::TempDir>,
    _balancer: Balancer,
}

/// `cmd` (a `larder serve` command) for another node: the same program,
/// arguments and environment, with `data_dir` for its data directory.
fn node_command(cmd: &Command, data_dir: &Path) -> Command {
    let mut node = Command::new(cmd.get_program());
    let mut after_flag = false;
    for arg in cmd.get_args() {
        node.arg(if after_flag { data_dir.as_os_str() } else { arg });
        after_flag = arg == "--data-dir";
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => node.env(key, value),
            None => node.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        node.current_dir(dir);
    }
    node.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    die_with_parent(&mut node);
    node
}

/// A started `larder serve`: its output is collected in the background
/// (stdout kept whole, so the server never blocks on a full pipe).
pub(crate) struct StartedServe {
    pub(crate) child: Child,
    /// The command, for messages.
    pub(crate) command: String,
    /// The first stdout line, newline included.
    pub(crate) first_line: String,
    pub(crate) stderr: Arc<Mutex<Vec<u8>>>,
    pub(crate) stdout: Arc<Mutex<Vec<u8>>>,
}

/// Starts a `larder serve` command from [`Larder::serve_command`] and waits
/// for its first stdout line, panicking with its stderr when none comes.
pub(crate) fn start_serve(cmd: Command) -> StartedServe {
    spawn_serve(cmd).listening()
}

/// A `larder serve` spawned, its output being collected, its first stdout
/// line not yet read.
struct SpawnedServe {
    child: Child,
    command: String,
    first_line: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

/// Spawns a `larder serve` command and starts collecting its output.
fn spawn_serve(cmd: Command) -> SpawnedServe {
    spawn_serve_into(cmd, &Arc::default(), &Arc::default())
}

/// Spawns a `larder serve` command and starts collecting its output into
/// `stderr` and `stdout`, whole lines at a time (several nodes may share
/// them).
fn spawn_serve_into(mut cmd: Command, stderr: &Arc<Mutex<Vec<u8>>>, stdout: &Arc<Mutex<Vec<u8>>>) -> SpawnedServe {
    let command = crate::venv::describe_cmd(&cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let (first_line_tx, first_line_rx) = mpsc::channel::<String>();
    collect_lines(child.stderr.take().expect("piped stderr"), Arc::clone(stderr), None);
    collect_lines(child.stdout.take().expect("piped stdout"), Arc::clone(stdout), Some(first_line_tx));
    SpawnedServe { child, command, first_line: first_line_rx, stderr: Arc::clone(stderr), stdout: Arc::clone(stdout) }
}

/// Appends what `pipe` carries to `buf` line by line on a thread of its
/// own (a last line without its newline too), sending the first line to
/// `first` when given.
fn collect_lines(
    pipe: impl std::io::Read + Send + 'static,
    buf: Arc<Mutex<Vec<u8>>>,
    first: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut first = first;
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            buf.lock().unwrap().extend_from_slice(&line);
            if let Some(first) = first.take() {
                let _ = first.send(String::from_utf8_lossy(&line).into_owned());
            }
            line.clear();
        }
    });
}

impl SpawnedServe {
    /// Waits for the first stdout line, panicking with the stderr when
    /// none comes.
    fn listening(self) -> StartedServe {
        let SpawnedServe { mut child, command, first_line, stderr, stdout } = self;
        match first_line.recv_timeout(STARTUP_TIMEOUT) {
            Ok(first_line) => StartedServe { child, command, first_line, stderr, stdout },
            Err(e) => {
                // Give stderr a moment to be collected for the message.
                std::thread::sleep(Duration::from_millis(200));
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` printed no listening line ({e}; exit status {status:?})\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
        }
    }
}

/// The `request` lines of a `--log-format json` stderr.
pub fn parse_request_log(stderr: &str) -> Vec<RequestLog> {
    let complete = match stderr.rfind('\n') {
        Some(i) => &stderr[..=i],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let fields = v.get("fields")?;
            if fields.get("message")?.as_str()? != "request" {
                return None;
            }
            Some(RequestLog {
                method: fields.get("method")?.as_str()?.to_owned(),
                path: fields.get("path")?.as_str()?.to_owned(),
                status: u16::try_from(fields.get("status")?.as_u64()?).ok()?,
            })
        })
        .collect()
}

/// Parses `larder listening on http://127.0.0.1:PORT/` (with its newline).
pub fn parse_listening_line(line: &str) -> Result<(SocketAddr, Url), String> {
    let line = line.strip_suffix('\n').ok_or("line does not end in a newline")?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let url_text = line.strip_prefix("larder listening on ").ok_or("does not start with 'larder listening on '")?;
    let url = Url::parse(url_text).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "http" || url.path() != "/" || url.query().is_some() || !url_text.ends_with('/') {
        return Err("expected http://ADDR/".into());
    }
    let port = url.port().ok_or("no port")?;
    if port == 0 {
        return Err("port 0 printed instead of the real port".into());
    }
    let ip: IpAddr = url.host_str().ok_or("no host")?.parse().map_err(|e| format!("host is not an IP: {e}"))?;
    if ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(format!("listening on {ip}, asked for 127.0.0.1"));
    }
    Ok((SocketAddr::new(ip, port), url))
}

/// Sets the child's open-file limits.
#[allow(unsafe_code, reason = "pre_exec runs code between fork and exec")]
fn limit_open_files(cmd: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child get SIGKILL if the thread that spawned it dies, so a
/// test binary killed mid-run leaves no server behind. (The guards' `Drop`
/// is the normal way processes end.)
#[allow(unsafe_code, reason = "pre_exec runs code between fork and exec")]
pub(crate) fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// A running `larder add` started by [`Larder::spawn_add`]; killed on drop
/// unless waited for.
pub struct AddProcess {
    child: Option<Child>,
    command: String,
}

impl AddProcess {
    /// Waits for it to finish.
    pub fn wait(mut self) -> AddOutput {
        let child = self.child.take().expect("not yet waited");
        let out = child.wait_with_output().expect("wait for larder add");
        AddOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: self.command.clone(),
        }
    }
}

impl Drop for AddProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One request as `larder serve --log-format json` logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// HTTP method.
    pub method: String,
    /// URI path as received.
    pub path: String,
    /// Response status.
    pub status: u16,
}

/// A running `larder serve`, killed (SIGKILL to its PID) on drop.
pub struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    base: Url,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The other nodes, in the shared setup.
    peers: Option<Peers>,
    /// Whether a failing test shows the log (the other nodes share the
    /// first one's log, shown once).
    shows_log: bool,
}

impl Server {
    /// The process id (of the first node, in the shared setup).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`, as printed.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The absolute URL of `path` (e.g. `/simple/`).
    pub fn url(&self, path: &str) -> Url {
        http::resolve(&self.base, path)
    }

    /// A GET of `target`, sent verbatim (e.g. `/simple/foo/`).
    pub fn get(&self, target: &str) -> Request {
        Request::new(self.addr, "GET", target)
    }

    /// A HEAD of `target`.
    pub fn head(&self, target: &str) -> Request {
        Request::new(self.addr, "HEAD", target)
    }

    /// A request with any method for `target`.
    pub fn request(&self, method: &str, target: &str) -> Request {
        Request::new(self.addr, method, target)
    }

    /// A GET of an absolute URL that points at this server (e.g. a file URL
    /// resolved from a page).
    pub fn get_url(&self, url: &Url) -> Request {
        Request::to_url(self.addr, "GET", url)
    }

    /// A request with any method for an absolute URL on this server.
    pub fn request_url(&self, method: &str, url: &Url) -> Request {
        Request::to_url(self.addr, method, url)
    }

    /// Sends raw request bytes (see [`http::send_raw`]).
    pub fn raw(&self, request: &[u8]) -> Response {
        http::send_raw(self.addr, request)
    }

    /// The `/metrics` text of every node, one after the other (a sample
    /// [`crate::metric`] reads is summed over the nodes).
    pub fn metrics(&self) -> String {
        let nodes: Vec<SocketAddr> = match &self.peers {
            Some(peers) => std::iter::once(peers.first).chain(peers.others.iter().map(Server::addr)).collect(),
            None => vec![self.addr],
        };
        let texts: Vec<String> = nodes
            .into_iter()
            .map(|node| Request::new(node, "GET", "/metrics").send().assert_status(200).text())
            .collect();
        texts.join("\n")
    }

    /// Everything written to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything written to stdout so far (the listening line included).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Complete stderr lines so far, each parsed as JSON (`Err` holds a line
    /// that is not JSON).
    pub fn log_lines(&self) -> Vec<Result<serde_json::Value, String>> {
        let text = self.stderr_text();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|_| l.to_owned()))
            .collect()
    }

    /// The request log so far: every JSON line whose `fields.message` is
    /// `"request"`, with `fields.method`, `fields.path`, `fields.status`.
    pub fn request_log(&self) -> Vec<RequestLog> {
        parse_request_log(&self.stderr_text())
    }

    /// Polls the request log until `done` holds for it (log lines may be
    /// written just after the response), or `timeout` passes; returns the
    /// log either way.
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

    /// True while the process (the first node, in the shared setup) runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The other nodes go with it (killed by their own guards).
        drop(self.peers.take());
        if std::thread::panicking() && self.shows_log {
            eprintln!("--- larder serve (pid {}) stderr ---\n{}", self.pid, self.stderr_text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        let (addr, url) = parse_listening_line("larder listening on http://127.0.0.1:4321/\n").unwrap();
        assert_eq!(addr.port(), 4321);
        assert_eq!(url.as_str(), "http://127.0.0.1:4321/");
        assert!(parse_listening_line("larder listening on http://127.0.0.1:0/\n").is_err());
        assert!(parse_listening_line("listening on http://127.0.0.1:5/\n").is_err());
        assert!(parse_listening_line("larder listening on http://127.0.0.1:5\n").is_err());
    }
}
