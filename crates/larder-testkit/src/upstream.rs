//! A fixture upstream index for the caching-proxy tests.
//!
//! [`FixtureUpstream`] is a small HTTP/1.1 server on `127.0.0.1:0`, run on
//! std threads inside the test process, that serves a Simple API for the
//! fixture distributions it is given:
//!
//! - `/simple/` and `/simple/<project>/` as PEP 691 JSON (absolute file
//!   URLs, `size`, `upload-time`, `versions`, `meta.tracks`,
//!   `project-status`) or PEP 503 HTML (relative file links with
//!   `#sha256=`, `data-*` attributes, `pypi:*` meta tags, no size or upload
//!   time), or either by `Accept` ([`UpstreamFormat`]);
//! - `ETag` on every page, and `304` for a matching `If-None-Match`;
//! - files at `/packages/<sha256>/<filename>` (a `Range` of one range gets
//!   `206` or `416`; [`FixtureUpstream::file_bytes_sent`] counts the file
//!   bytes sent), and when enabled
//!   ([`FixtureUpstream::set_serve_metadata`]) PEP 658 metadata at
//!   `<file URL>.metadata`, advertised with its hash.
//!
//! Every request is recorded ([`FixtureUpstream::seen`],
//! [`FixtureUpstream::count`]) with its `If-None-Match` and the status it
//! was answered with. Faults can be switched on and off while larder is
//! running ([`Fault`]): refusing connections, hanging, answering 500,
//! truncated or corrupted file bodies, malformed project pages. A file can
//! be held open half-sent ([`FixtureUpstream::hold_file`]) so concurrent
//! downloads really overlap. Dropping the server stops it (the port then
//! refuses connections).
//!
//! Every answer carries `Connection: close`, one thread per connection.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fixtures::{Built, DistKind, normalize};
use crate::hash::sha256_hex;

/// How the fixture answers project pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFormat {
    /// Always PEP 691 JSON.
    Json,
    /// Always PEP 503 HTML (`text/html`), whatever is asked.
    Html,
    /// JSON when `Accept` names the PEP 691 JSON type, HTML otherwise.
    Negotiate,
}

/// A malformed project page, answered with status 200.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Binary garbage (NUL bytes included), as `text/html`.
    Garbage,
    /// An HTML document that is no Simple API page: an error page of some
    /// middlebox, with no links and no `pypi:repository-version`.
    HtmlWithoutLinks,
    /// JSON of the wrong shape: `files` is not an array.
    JsonWrongShape,
}

/// A fault the fixture can be switched into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Stop listening: connections are refused until the fault is cleared
    /// (the same port is listened on again).
    Refuse,
    /// Read the request, then answer nothing and keep the connection open
    /// (until the fault is cleared, the server stops, or 60 s pass).
    Hang,
    /// Answer every request with this status.
    Status(u16),
    /// Distribution files: announce the full `Content-Length`, send half,
    /// close.
    TruncatedFiles,
    /// Every answer with a body (pages, `.metadata` files, distribution
    /// files): announce the full `Content-Length`, send half, close.
    Truncated,
    /// Distribution files: the right length, but one byte changed, so the
    /// body does not match the advertised sha256.
    CorruptFiles,
    /// `.metadata` files: one byte changed, so they do not match the
    /// advertised hash.
    CorruptMetadata,
    /// Project pages are answered with this malformed body.
    MalformedPages(Malformed),
    /// Every answer: the head at once, then the body one byte per period
    /// (never waiting long enough for a read timeout).
    Trickle(Duration),
    /// Read the request, then reset the connection (RST, no answer).
    Reset,
    /// Every answer announces a `Content-Length` of half its body and
    /// sends the whole body: the client reads a short body.
    ShortLength,
    /// Every request is answered `200 text/html` with an error page (what
    /// some proxies and captive portals do).
    ErrorPage200,
    /// Every request is answered `302` to the same path and port under this
    /// URL scheme (`ftp`, `file`, `gopher`...).
    RedirectScheme(&'static str),
}

/// A distribution file the fixture lists and serves.
#[derive(Clone, Debug)]
pub struct UpstreamFile {
    /// The fixture (filename, digest, size, metadata).
    pub built: Built,
    bytes: Arc<Vec<u8>>,
    /// `requires-python` / `data-requires-python`.
    pub requires_python: Option<String>,
    /// Yanked: `Some("")` without a reason, `Some(reason)` with one.
    pub yanked: Option<String>,
    /// The `upload-time` given in JSON pages.
    pub upload_time: String,
    /// Whether a PEP 740 provenance URL is given
    /// (`/integrity/<filename>/provenance` on the fixture).
    pub provenance: bool,
}

impl UpstreamFile {
    /// A file with the bytes of `built` (read now), not yanked, no
    /// `requires-python`, upload time 2024-01-02T03:04:05.123456Z.
    pub fn new(built: &Built) -> UpstreamFile {
        UpstreamFile {
            built: built.clone(),
            bytes: Arc::new(built.bytes()),
            requires_python: None,
            yanked: None,
            upload_time: "2024-01-02T03:04:05.123456Z".to_owned(),
            provenance: false,
        }
    }

    /// Sets `requires-python`.
    pub fn requires_python(mut self, specifier: &str) -> UpstreamFile {
        self.requires_python = Some(specifier.to_owned());
        self
    }

    /// Marks it yanked with `reason` (`""` for none).
    pub fn yanked(mut self, reason: &str) -> UpstreamFile {
        self.yanked = Some(reason.to_owned());
        self
    }

    /// Sets the upload time (`yyyy-mm-ddThh:mm:ss.ffffffZ`).
    pub fn upload_time(mut self, time: &str) -> UpstreamFile {
        self.upload_time = time.to_owned();
        self
    }

    /// Gives a provenance URL.
    pub fn with_provenance(mut self) -> UpstreamFile {
        self.provenance = true;
        self
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Page-level fields of a project.
#[derive(Clone, Debug, Default)]
pub struct ProjectMeta {
    /// PEP 708 `tracks` URLs.
    pub tracks: Vec<String>,
    /// PEP 708 `alternate-locations` URLs (JSON only).
    pub alternate_locations: Vec<String>,
    /// PEP 792 status and reason.
    pub status: Option<(String, Option<String>)>,
    /// Versions listed in JSON `versions` beyond those of the files.
    pub extra_versions: Vec<String>,
    /// The JSON `versions` list exactly as given (order and spelling),
    /// instead of one made from the files and `extra_versions`.
    pub versions: Option<Vec<String>>,
    /// The project's serial: `_last-serial` in JSON pages (a string, as
    /// the public index writes it) and `X-PyPI-Last-Serial` on every page.
    pub last_serial: Option<u64>,
    /// PEP 752's `namespace` object (JSON only; the page says 1.5).
    pub namespace: Option<serde_json::Value>,
}

/// One request the fixture received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Request target as sent.
    pub path: String,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Range` header.
    pub range: Option<String>,
    /// The status answered; `None` when no response head was sent (hang).
    pub status: Option<u16>,
}

#[derive(Default)]
struct Project {
    meta: ProjectMeta,
    files: Vec<UpstreamFile>,
}

struct State {
    format: UpstreamFormat,
    serve_metadata: bool,
    projects: BTreeMap<String, Project>,
    fault: Option<Fault>,
    holds: HashMap<String, Duration>,
    page_delay: Duration,
    redirect_files_to: Option<String>,
    close_delimited_files: bool,
    release_generation: u64,
    file_bytes: u64,
    seen: Vec<Seen>,
    stopped: bool,
    listening: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fixture upstream index; stops when dropped.
pub struct FixtureUpstream {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FixtureUpstream {
    /// Starts an empty fixture upstream answering pages in `format`, with
    /// `.metadata` files not served.
    pub fn start(format: UpstreamFormat) -> FixtureUpstream {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fixture upstream");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                format,
                serve_metadata: false,
                projects: BTreeMap::new(),
                fault: None,
                holds: HashMap::new(),
                page_delay: Duration::ZERO,
                redirect_files_to: None,
                close_delimited_files: false,
                release_generation: 0,
                file_bytes: 0,
                seen: Vec::new(),
                stopped: false,
                listening: true,
            }),
            changed: Condvar::new(),
            addr,
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(shared, listener))
        };
        FixtureUpstream { shared, acceptor: Some(acceptor) }
    }

    /// Starts a fixture upstream serving `files` (each with default
    /// [`UpstreamFile`] settings).
    pub fn with_files(format: UpstreamFormat, files: &[Built]) -> FixtureUpstream {
        let upstream = FixtureUpstream::start(format);
        for built in files {
            upstream.add(built);
        }
        upstream
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.shared.addr)
    }

    /// The Simple API root to give larder: `http://127.0.0.1:PORT/simple/`.
    pub fn simple_url(&self) -> String {
        self.url("/simple/")
    }

    /// The path of a project page.
    pub fn page_path(project: &str) -> String {
        format!("/simple/{}/", normalize(project))
    }

    /// The path a file is served at.
    pub fn file_path(built: &Built) -> String {
        format!("/packages/{}/{}", built.sha256, url_segment(&built.filename))
    }

    /// The path of a file's PEP 658 metadata.
    pub fn metadata_path(built: &Built) -> String {
        format!("{}.metadata", Self::file_path(built))
    }

    /// The provenance URL given for a file made [`UpstreamFile::with_provenance`].
    pub fn provenance_url(&self, built: &Built) -> String {
        self.url(&format!("/integrity/{}/provenance", built.filename))
    }

    /// Changes how pages are answered.
    pub fn set_format(&self, format: UpstreamFormat) {
        self.shared.lock().format = format;
    }

    /// Serves (and advertises) PEP 658 `.metadata` files for wheels.
    pub fn set_serve_metadata(&self, serve: bool) {
        self.shared.lock().serve_metadata = serve;
    }

    /// Lists and serves a file with default settings.
    pub fn add(&self, built: &Built) {
        self.add_file(UpstreamFile::new(built));
    }

    /// Lists and serves a file (replacing one of the same filename).
    pub fn add_file(&self, file: UpstreamFile) {
        let mut state = self.shared.lock();
        let project = state.projects.entry(file.built.project.clone()).or_default();
        project.files.retain(|f| f.built.filename != file.built.filename);
        project.files.push(file);
    }

    /// Stops listing and serving `filename`.
    pub fn remove_file(&self, filename: &str) {
        for project in self.shared.lock().projects.values_mut() {
            project.files.retain(|f| f.built.filename != filename);
        }
    }

    /// Sets a project's page-level fields.
    pub fn set_project_meta(&self, project: &str, meta: ProjectMeta) {
        self.shared.lock().projects.entry(normalize(project)).or_default().meta = meta;
    }

    /// Switches a fault on (`Some`) or off (`None`). Switching
    /// [`Fault::Refuse`] on or off returns once the port is closed or
    /// listened on again.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let want_listening = fault != Some(Fault::Refuse);
        let mut state = self.shared.lock();
        state.fault = fault;
        self.shared.changed.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.listening != want_listening {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the fixture upstream did not {} in time",
                if want_listening { "listen again" } else { "stop listening" }
            );
            state = self.shared.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Holds every download of `filename` after half its body, for at most
    /// `hold` or until [`FixtureUpstream::release_holds`].
    pub fn hold_file(&self, filename: &str, hold: Duration) {
        self.shared.lock().holds.insert(filename.to_owned(), hold);
    }

    /// Lets every held download finish now (later ones are held again).
    pub fn release_holds(&self) {
        let mut state = self.shared.lock();
        state.release_generation += 1;
        self.shared.changed.notify_all();
    }

    /// Delays every project page answer by `delay`.
    pub fn set_page_delay(&self, delay: Duration) {
        self.shared.lock().page_delay = delay;
    }

    /// Answers every file and `.metadata` request with a `302` to the same
    /// path under `base` (e.g. another fixture's `http://127.0.0.1:PORT`),
    /// as indexes that keep their files on another host do; `None` serves
    /// them again.
    pub fn redirect_files_to(&self, base: Option<String>) {
        self.shared.lock().redirect_files_to = base;
    }

    /// Sends file bodies without `Content-Length`, ended by closing the
    /// connection (so a cut body looks complete to the HTTP layer).
    pub fn set_close_delimited_files(&self, close_delimited: bool) {
        self.shared.lock().close_delimited_files = close_delimited;
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().seen.clone()
    }

    /// How many requests for exactly `path` were received.
    pub fn count(&self, path: &str) -> usize {
        self.shared.lock().seen.iter().filter(|s| s.path == path).count()
    }

    /// How many bytes of distribution file bodies (whole or ranges) were
    /// sent in all.
    pub fn file_bytes_sent(&self) -> u64 {
        self.shared.lock().file_bytes
    }

    /// How many requests were received in all.
    pub fn total(&self) -> usize {
        self.shared.lock().seen.len()
    }

    /// Forgets the requests seen so far.
    pub fn reset_seen(&self) {
        self.shared.lock().seen.clear();
    }

    /// A summary of the requests seen, for failure messages.
    pub fn describe_seen(&self) -> String {
        self.seen()
            .iter()
            .map(|s| {
                format!(
                    "{} {} -> {}{}",
                    s.method,
                    s.path,
                    s.status.map_or("no answer".to_owned(), |c| c.to_string()),
                    s.if_none_match.as_deref().map(|e| format!(" (If-None-Match {e})")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the server (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for FixtureUpstream {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.stopped = true;
            self.shared.changed.notify_all();
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn set_listening(shared: &Shared, listening: bool) {
    let mut state = shared.lock();
    if state.listening != listening {
        state.listening = listening;
        shared.changed.notify_all();
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut listener = Some(listener);
    loop {
        let (stopped, refuse) = {
            let state = shared.lock();
            (state.stopped, state.fault == Some(Fault::Refuse))
        };
        if stopped {
            drop(listener.take());
            set_listening(&shared, false);
            return;
        }
        if refuse {
            if listener.take().is_some() {
                set_listening(&shared, false);
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(current) = listener.as_ref() else {
            match TcpListener::bind(shared.addr) {
                Ok(l) => {
                    l.set_nonblocking(true).expect("non-blocking listener");
                    listener = Some(l);
                    set_listening(&shared, true);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            continue;
        };
        match current.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || handle(&shared, stream));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(3)),
        }
    }
}

/// The parts of an HTTP/1.1 request the fixture servers look at.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) accept: Option<String>,
    pub(crate) if_none_match: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) range: Option<String>,
}

/// Reads one request's head (at most 64 KiB) from `stream`.
pub(crate) fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut accept = None;
    let mut if_none_match = None;
    let mut authorization = None;
    let mut range = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_owned();
            if name.eq_ignore_ascii_case("accept") {
                accept = Some(value);
            } else if name.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(value);
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value);
            } else if name.eq_ignore_ascii_case("range") {
                range = Some(value);
            }
        }
    }
    Some(Request { method, path, accept, if_none_match, authorization, range })
}

/// What to send.
enum Answer {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A file body: announce `body.len()`, send `body[..cut]`, then either
    /// close (`truncate`) or wait for the hold and send the rest.
    File {
        body: Arc<Vec<u8>>,
        corrupt: bool,
        truncate: bool,
        hold: Option<Duration>,
        close_delimited: bool,
    },
}

fn handle(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let (index, fault, page_delay) = {
        let mut state = shared.lock();
        state.seen.push(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            accept: request.accept.clone(),
            if_none_match: request.if_none_match.clone(),
            authorization: request.authorization.clone(),
            range: request.range.clone(),
            status: None,
        });
        (state.seen.len() - 1, state.fault, state.page_delay)
    };
    if fault == Some(Fault::Hang) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut state = shared.lock();
        while !state.stopped && state.fault == Some(Fault::Hang) && Instant::now() < deadline {
            state = shared.changed.wait_timeout(state, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
        return;
    }
    if fault == Some(Fault::Reset) {
        reset(&stream);
        return;
    }
    let is_page = request.path.starts_with("/simple/") && request.path != "/simple/";
    if is_page && !page_delay.is_zero() {
        std::thread::sleep(page_delay);
    }
    let answer = answer(shared, &request, fault);
    let status = match &answer {
        Answer::Full { status, .. } => *status,
        Answer::File { .. } => 200,
    };
    shared.lock().seen[index].status = Some(status);
    let head_only = request.method.eq_ignore_ascii_case("HEAD");
    let is_file = request.path.starts_with("/packages/") && !request.path.ends_with(".metadata");
    let sent = match &answer {
        Answer::Full { body, .. } if is_file && !head_only => body.len() as u64,
        Answer::File { body, .. } if !head_only => body.len() as u64,
        _ => 0,
    };
    shared.lock().file_bytes += sent;
    if let Some(Fault::Trickle(every)) = fault {
        trickle(shared, &mut stream, answer, every);
        return;
    }
    match answer {
        Answer::Full { status, headers, body } => {
            let announced = if fault == Some(Fault::ShortLength) { body.len() / 2 } else { body.len() };
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {announced}\r\nConnection: close\r\n",
                reason(status),
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            if !head_only && status != 304 {
                let cut = if fault == Some(Fault::Truncated) { body.len() / 2 } else { body.len() };
                let _ = stream.write_all(&body[..cut]);
            }
        }
        Answer::File { body, corrupt, truncate, hold, close_delimited } => {
            let announced = if fault == Some(Fault::ShortLength) { body.len() / 2 } else { body.len() };
            let length = if close_delimited { String::new() } else { format!("Content-Length: {announced}\r\n") };
            let head = format!(
                "HTTP/1.1 200 OK\r\n{length}Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() || head_only {
                return;
            }
            let mut bytes: Vec<u8> = body.as_ref().clone();
            if corrupt && !bytes.is_empty() {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
            }
            let half = bytes.len() / 2;
            if stream.write_all(&bytes[..half]).is_err() {
                return;
            }
            let _ = stream.flush();
            if truncate {
                let _ = stream.shutdown(std::net::Shutdown::Write);
                return;
            }
            if let Some(hold) = hold {
                let deadline = Instant::now() + hold;
                let mut state = shared.lock();
                let generation = state.release_generation;
                while !state.stopped && state.release_generation == generation && Instant::now() < deadline {
                    state = shared
                        .changed
                        .wait_timeout(state, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            let _ = stream.write_all(&bytes[half..]);
        }
    }
    let _ = stream.flush();
}

/// Sends `answer` with its head at once and its body a byte per `every`,
/// until it is all sent, the client goes away or the fixture stops.
fn trickle(shared: &Shared, stream: &mut TcpStream, answer: Answer, every: Duration) {
    let (status, headers, body) = match answer {
        Answer::Full { status, headers, body } => (status, headers, body),
        Answer::File { body, .. } => {
            (200, vec![("Content-Type", "application/octet-stream".to_owned())], body.as_ref().clone())
        }
    };
    let mut head =
        format!("HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n", reason(status), body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    for byte in body {
        if shared.lock().stopped || stream.write_all(&[byte]).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

/// Closes `stream` with a reset (`SO_LINGER` 0) instead of a FIN.
#[allow(unsafe_code, reason = "setsockopt has no safe wrapper in std")]
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a pointer to a live `linger` of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A `Range` request for a file: `206` with the bytes of one range
/// (`a-b`, `a-`, `-n`), `416` for one outside the file, the whole file for
/// anything else.
fn range_answer(bytes: &[u8], range: &str) -> Answer {
    let size = bytes.len() as u64;
    let whole = || Answer::Full {
        status: 200,
        headers: vec![("Content-Type", "application/octet-stream".to_owned())],
        body: bytes.to_vec(),
    };
    let Some((first, last)) = range.strip_prefix("bytes=").and_then(|r| r.trim().split_once('-')) else {
        return whole();
    };
    let (first, last) = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(first), Some(last)) => (first, last.min(size.saturating_sub(1))),
        (Some(first), None) if last.is_empty() => (first, size.saturating_sub(1)),
        (None, Some(suffix)) if first.is_empty() => (size.saturating_sub(suffix), size.saturating_sub(1)),
        _ => return whole(),
    };
    if first >= size || first > last {
        return Answer::Full {
            status: 416,
            headers: vec![("Content-Range", format!("bytes */{size}"))],
            body: Vec::new(),
        };
    }
    Answer::Full {
        status: 206,
        headers: vec![
            ("Content-Type", "application/octet-stream".to_owned()),
            ("Content-Range", format!("bytes {first}-{last}/{size}")),
        ],
        body: bytes[first as usize..=last as usize].to_vec(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        416 => "Range Not Satisfiable",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn text(status: u16, body: &str) -> Answer {
    Answer::Full { status, headers: vec![("Content-Type", "text/plain".to_owned())], body: body.as_bytes().to_vec() }
}

fn answer(shared: &Shared, request: &Request, fault: Option<Fault>) -> Answer {
    match fault {
        Some(Fault::Status(code)) => return text(code, "fixture upstream: injected failure\n"),
        Some(Fault::ErrorPage200) => return malformed(Malformed::HtmlWithoutLinks),
        Some(Fault::RedirectScheme(scheme)) => {
            return Answer::Full {
                status: 302,
                headers: vec![("Location", format!("{scheme}://{}{}", shared.addr, request.path))],
                body: Vec::new(),
            };
        }
        _ => {}
    }
    let state = shared.lock();
    let path = request.path.split('?').next().unwrap_or("");
    let base = format!("http://{}", shared.addr);
    let wants_json = match state.format {
        UpstreamFormat::Json => true,
        UpstreamFormat::Html => false,
        UpstreamFormat::Negotiate => {
            request.accept.as_deref().is_some_and(|a| a.contains("application/vnd.pypi.simple.v1+json"))
        }
    };
    if path == "/simple/" {
        let names: Vec<&String> = state.projects.keys().collect();
        return if wants_json {
            let body = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "projects": names.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>(),
            });
            page_answer(request, body.to_string().into_bytes(), JSON_TYPE)
        } else {
            let mut html = String::from("<!DOCTYPE html><html><body>\n");
            for name in names {
                html.push_str(&format!("<a href=\"{name}/\">{name}</a>\n"));
            }
            html.push_str("</body></html>\n");
            page_answer(request, html.into_bytes(), "text/html")
        };
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let name = rest.trim_end_matches('/');
        let Some(project) = state.projects.get(name).filter(|_| rest.ends_with('/')) else {
            return text(404, "no such project\n");
        };
        if let Some(Fault::MalformedPages(kind)) = fault {
            return malformed(kind);
        }
        let mut answer = if wants_json {
            let body = json_page(name, project, &base, state.serve_metadata);
            page_answer(request, body.into_bytes(), JSON_TYPE)
        } else {
            let body = html_page(name, project, state.serve_metadata);
            page_answer(request, body.into_bytes(), "text/html; charset=utf-8")
        };
        if let (Answer::Full { headers, .. }, Some(serial)) = (&mut answer, project.meta.last_serial) {
            headers.push(("X-PyPI-Last-Serial", serial.to_string()));
        }
        return answer;
    }
    if let Some(rest) = path.strip_prefix("/packages/") {
        let Some((sha, filename)) = rest.split_once('/') else {
            return text(404, "not found\n");
        };
        let filename = &*percent_encoding::percent_decode_str(filename).decode_utf8_lossy();
        if let Some(base) = &state.redirect_files_to {
            return Answer::Full {
                status: 302,
                headers: vec![("Location", format!("{base}{}", request.path))],
                body: Vec::new(),
            };
        }
        let files = state.projects.values().flat_map(|p| p.files.iter());
        if let Some(dist) = filename.strip_suffix(".metadata") {
            let found = state
                .projects
                .values()
                .flat_map(|p| p.files.iter())
                .find(|f| f.built.sha256 == sha && f.built.filename == dist && f.built.kind == DistKind::Wheel);
            return match found.and_then(|f| f.built.metadata.clone()) {
                Some(mut metadata) if state.serve_metadata => {
                    if fault == Some(Fault::CorruptMetadata) && !metadata.is_empty() {
                        let middle = metadata.len() / 2;
                        metadata[middle] ^= 0x20;
                    }
                    Answer::Full {
                        status: 200,
                        headers: vec![("Content-Type", "text/plain".to_owned())],
                        body: metadata,
                    }
                }
                _ => text(404, "no metadata\n"),
            };
        }
        let mut files = files;
        let Some(file) = files.find(|f| f.built.sha256 == sha && f.built.filename == filename) else {
            return text(404, "no such file\n");
        };
        if let Some(range) = request.range.as_deref() {
            // Faulty file bodies stay faulty when asked for by ranges.
            return match fault {
                Some(Fault::TruncatedFiles | Fault::Truncated) => text(502, "fixture upstream: files are cut short\n"),
                Some(Fault::CorruptFiles) => {
                    let mut bytes = file.bytes.as_ref().clone();
                    if let Some(middle) = bytes.len().checked_div(2).filter(|_| !bytes.is_empty()) {
                        bytes[middle] ^= 0xff;
                    }
                    range_answer(&bytes, range)
                }
                _ => range_answer(&file.bytes, range),
            };
        }
        return Answer::File {
            body: Arc::clone(&file.bytes),
            corrupt: fault == Some(Fault::CorruptFiles),
            truncate: matches!(fault, Some(Fault::TruncatedFiles | Fault::Truncated)),
            hold: state.holds.get(filename).copied(),
            close_delimited: state.close_delimited_files,
        };
    }
    if path.starts_with("/integrity/") {
        return Answer::Full {
            status: 200,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: b"{\"attestation_bundles\": []}".to_vec(),
        };
    }
    text(404, "not found\n")
}

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

fn page_answer(request: &Request, body: Vec<u8>, content_type: &str) -> Answer {
    let etag = format!("\"{}\"", &sha256_hex(&body)[..24]);
    let matches = request.if_none_match.as_deref().is_some_and(|v| v.split(',').any(|c| c.trim() == etag));
    Answer::Full {
        status: if matches { 304 } else { 200 },
        headers: vec![("Content-Type", content_type.to_owned()), ("ETag", etag), ("Vary", "Accept".to_owned())],
        body,
    }
}

fn malformed(kind: Malformed) -> Answer {
    let (content_type, body): (&str, Vec<u8>) = match kind {
        Malformed::Garbage => (
            "text/html",
            (0u32..512)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .chain([0u8, 0xff, 0xfe])
                .collect(),
        ),
        Malformed::HtmlWithoutLinks => (
            "text/html",
            b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad Gateway</h1><p>The upstream server is down for maintenance.</p></body></html>\n".to_vec(),
        ),
        Malformed::JsonWrongShape => (
            JSON_TYPE,
            br#"{"meta": {"api-version": "1.1"}, "name": "x", "files": {"error": "internal"}}"#
                .to_vec(),
        ),
    };
    Answer::Full { status: 200, headers: vec![("Content-Type", content_type.to_owned())], body }
}

fn api_version(project: &Project) -> &'static str {
    if project.meta.namespace.is_some() {
        "1.5"
    } else if project.meta.status.is_some() {
        "1.4"
    } else if project.files.iter().any(|f| f.provenance) {
        "1.3"
    } else if !project.meta.tracks.is_empty() || !project.meta.alternate_locations.is_empty() {
        "1.2"
    } else {
        "1.1"
    }
}

fn metadata_hash(file: &UpstreamFile, serve_metadata: bool) -> Option<String> {
    if !serve_metadata || file.built.kind != DistKind::Wheel {
        return None;
    }
    file.built.metadata.as_deref().map(sha256_hex)
}

fn json_page(name: &str, project: &Project, base: &str, serve_metadata: bool) -> String {
    let files: Vec<serde_json::Value> = project
        .files
        .iter()
        .map(|f| {
            let mut entry = serde_json::json!({
                "filename": f.built.filename,
                "url": format!("{base}{}", FixtureUpstream::file_path(&f.built)),
                "hashes": {"sha256": f.built.sha256},
                "size": f.built.size,
                "upload-time": f.upload_time,
                "yanked": match &f.yanked {
                    None => serde_json::Value::Bool(false),
                    Some(r) if r.is_empty() => serde_json::Value::Bool(true),
                    Some(r) => serde_json::Value::String(r.clone()),
                },
            });
            let metadata = match metadata_hash(f, serve_metadata) {
                Some(hash) => serde_json::json!({"sha256": hash}),
                None => serde_json::Value::Bool(false),
            };
            entry["core-metadata"] = metadata.clone();
            entry["dist-info-metadata"] = metadata;
            if let Some(rp) = &f.requires_python {
                entry["requires-python"] = rp.clone().into();
            }
            if f.provenance {
                entry["provenance"] = format!("{base}/integrity/{}/provenance", f.built.filename).into();
            }
            entry
        })
        .collect();
    let versions = project.meta.versions.clone().unwrap_or_else(|| {
        let mut versions: Vec<String> = project
            .files
            .iter()
            .map(|f| f.built.version.clone())
            .filter(|v| !v.is_empty())
            .chain(project.meta.extra_versions.iter().cloned())
            .collect();
        versions.sort();
        versions.dedup();
        versions
    });
    let mut meta = serde_json::json!({"api-version": api_version(project)});
    if let Some(serial) = project.meta.last_serial {
        meta["_last-serial"] = serial.to_string().into();
    }
    if !project.meta.tracks.is_empty() {
        meta["tracks"] = project.meta.tracks.clone().into();
    }
    let mut page = serde_json::json!({
        "meta": meta,
        "name": name,
        "files": files,
        "versions": versions,
    });
    if !project.meta.alternate_locations.is_empty() {
        page["alternate-locations"] = project.meta.alternate_locations.clone().into();
    }
    if let Some((status, reason)) = &project.meta.status {
        let mut s = serde_json::json!({"status": status});
        if let Some(reason) = reason {
            s["reason"] = reason.clone().into();
        }
        page["project-status"] = s;
    }
    if let Some(namespace) = &project.meta.namespace {
        page["namespace"] = namespace.clone();
    }
    page.to_string()
}

/// A filename as one URL path segment: all but RFC 3986's unreserved
/// characters percent-encoded, as the public index's file URLs are.
fn url_segment(filename: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(filename, SEGMENT).to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_page(name: &str, project: &Project, serve_metadata: bool) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html>\n<head>\n");
    out.push_str(&format!("<meta name=\"pypi:repository-version\" content=\"{}\">\n", api_version(project)));
    for url in &project.meta.tracks {
        out.push_str(&format!("<meta name=\"pypi:tracks\" content=\"{}\">\n", escape(url)));
    }
    for url in &project.meta.alternate_locations {
        out.push_str(&format!("<meta name=\"pypi:alternate-locations\" content=\"{}\">\n", escape(url)));
    }
    if let Some((status, reason)) = &project.meta.status {
        out.push_str(&format!("<meta name=\"pypi:project-status\" content=\"{}\">\n", escape(status)));
        if let Some(reason) = reason {
            out.push_str(&format!("<meta name=\"pypi:project-status-reason\" content=\"{}\">\n", escape(reason)));
        }
    }
    out.push_str(&format!("<title>Links for {name}</title>\n</head>\n<body>\n<h1>Links for {name}</h1>\n"));
    for f in &project.files {
        // Relative links: larder must resolve them against the page URL.
        out.push_str(&format!("<a href=\"../..{}#sha256={}\"", FixtureUpstream::file_path(&f.built), f.built.sha256));
        if let Some(rp) = &f.requires_python {
            out.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
        }
        if let Some(hash) = metadata_hash(f, serve_metadata) {
            out.push_str(&format!(" data-dist-info-metadata=\"sha256={hash}\" data-core-metadata=\"sha256={hash}\""));
        }
        if let Some(reason) = &f.yanked {
            out.push_str(&format!(" data-yanked=\"{}\"", escape(reason)));
        }
        if f.provenance {
            out.push_str(&format!(" data-provenance=\"../../integrity/{}/provenance\"", f.built.filename));
        }
        out.push_str(&format!(">{}</a><br/>\n", escape(&f.built.filename)));
    }
    out.push_str("</body>\n</html>\n");
    out
}
