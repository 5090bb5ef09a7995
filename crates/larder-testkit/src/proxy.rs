//! Helpers for the caching-proxy tests: a download that does not insist on
//! a complete body (to see what a client gets when larder cuts one), the
//! request log with its cache outcome, `/metrics` values, and checks of a
//! data directory (blobs hash to their names, no temporary files left).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hash::sha256_hex;
use crate::http::{TIMEOUT, dechunk};
use crate::larder::Server;

/// What a client received, complete or not.
#[derive(Clone, Debug)]
pub struct Received {
    /// Status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes received (de-chunked as far as possible).
    pub body: Vec<u8>,
    /// True when the body is complete by its framing (`Content-Length`
    /// reached, or the last chunk seen); false when the connection was cut
    /// before.
    pub complete: bool,
    /// The request, for messages.
    pub request: String,
}

impl Received {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The SHA-256 of the body.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.body)
    }

    /// For messages.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let snippet: String = text.chars().take(300).collect();
        format!(
            "{}: status {} complete {} ({} bytes) headers {:?} body {:?}",
            self.request,
            self.status,
            self.complete,
            self.body.len(),
            self.headers,
            snippet
        )
    }
}

/// GETs `target` from `addr` with `Connection: close` and reads until the
/// server closes, tolerating a cut body. `Err` when not even a response
/// head arrived.
pub fn get_lenient(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Result<Received, String> {
    let stream = send_get(addr, target, headers)?;
    read_received(stream, &format!("GET {target}"))
}

/// Connects and sends a GET of `target` (with `Connection: close`), without
/// reading the answer: for tests that need many requests in flight at once.
pub fn send_get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Result<TcpStream, String> {
    let label = format!("GET {target}");
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{label}: connect: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    stream.set_write_timeout(Some(TIMEOUT)).ok();
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    stream.write_all(raw.as_bytes()).map_err(|e| format!("{label}: write: {e}"))?;
    Ok(stream)
}

/// Reads the answer to a request sent by [`send_get`] until the server
/// closes, tolerating a cut body.
pub fn read_received(mut stream: TcpStream, label: &str) -> Result<Received, String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    parse_lenient(&bytes, label)
}

fn parse_lenient(bytes: &[u8], label: &str) -> Result<Received, String> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        format!("{label}: no response head in {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)]))
    })?;
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let rest = &bytes[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{label}: bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let mut received = Received { status, headers, body: Vec::new(), complete: false, request: label.to_owned() };
    let chunked = received.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        match dechunk(rest) {
            Ok(body) => {
                received.body = body;
                received.complete = true;
            }
            Err(_) => {
                received.body = partial_dechunk(rest);
                received.complete = false;
            }
        }
    } else if let Some(length) = received.header("content-length") {
        let length: usize = length.parse().map_err(|_| format!("{label}: bad Content-Length {length:?}"))?;
        received.complete = rest.len() == length;
        received.body = rest[..rest.len().min(length)].to_vec();
    } else {
        // Delimited by the end of the connection: complete as far as the
        // client can tell.
        received.body = rest.to_vec();
        received.complete = true;
    }
    Ok(received)
}

/// The data of the complete chunks of a cut chunked body.
fn partial_dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let Some(size) = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok())
        else {
            break;
        };
        data = &data[line_end + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if size == 0 || data.len() < size + 2 {
            break;
        }
        data = &data[size + 2..];
    }
    out
}

/// One request of larder's JSON request log, with its cache outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLog {
    /// HTTP method.
    pub method: String,
    /// Path as received.
    pub path: String,
    /// Status.
    pub status: u16,
    /// `fields.cache` (`hit`, `miss`, `stale`, ..., or `-`).
    pub cache: String,
    /// `fields.micros`: how long the answer took (to its head).
    pub micros: Option<u64>,
}

/// The request log so far, with the `cache` field.
pub fn cache_log(server: &Server) -> Vec<CacheLog> {
    server
        .log_lines()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|v| {
            let fields = v.get("fields")?;
            if fields.get("message")?.as_str()? != "request" {
                return None;
            }
            Some(CacheLog {
                method: fields.get("method")?.as_str()?.to_owned(),
                path: fields.get("path")?.as_str()?.to_owned(),
                status: u16::try_from(fields.get("status")?.as_u64()?).ok()?,
                cache: fields.get("cache").and_then(|c| c.as_str()).unwrap_or("<none>").to_owned(),
                micros: fields.get("micros").and_then(|m| m.as_u64()),
            })
        })
        .collect()
}

/// The value of the `/metrics` sample `name` whose labels include every
/// `key="value"` pair of `labels` (summed over matching samples); 0 when
/// there is none.
pub fn metric(metrics_text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics_text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Every file under `<data_dir>/blobs/sha256/`, with whether its content
/// hashes to its file name (in the shared setup, every blob object of the
/// data directory's store, its key for its path).
pub fn blobs(data_dir: &Path) -> Vec<(PathBuf, bool)> {
    if let Some(place) = crate::shared::place_of(data_dir) {
        return place.blobs().into_iter().map(|(digest, sound)| (PathBuf::from(digest), sound)).collect();
    }
    blob_paths(data_dir)
        .into_iter()
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let ok = std::fs::read(&path).is_ok_and(|bytes| sha256_hex(&bytes) == name);
            (path, ok)
        })
        .collect()
}

/// Every file under `<data_dir>/blobs/sha256/`, sorted.
pub fn blob_paths(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data_dir.join("blobs").join("sha256")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// True when a blob with this digest is stored (in the shared setup: in
/// the bucket).
pub fn blob_stored(data_dir: &Path, sha256: &str) -> bool {
    if let Some(place) = crate::shared::place_of(data_dir) {
        return place.digests().iter().any(|digest| digest == sha256);
    }
    data_dir.join("blobs").join("sha256").join(&sha256[0..2]).join(&sha256[2..4]).join(sha256).exists()
}

/// The entries of `<data_dir>/tmp`.
pub fn tmp_entries(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data_dir.join("tmp"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Polls `check` every 50 ms until true or `timeout` passes; returns the
/// last result.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes that do not compress (a simple LCG), to make a wheel big enough
/// that its download takes more than one read.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// The `Authorization` value HTTP basic auth sends for `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Polls the request log (with cache outcomes) until `done` holds for it
/// (a line is written just after its response, so it may lag behind), or
/// `timeout` passes; returns the log either way.
pub fn wait_for_cache_log(server: &Server, timeout: Duration, done: impl Fn(&[CacheLog]) -> bool) -> Vec<CacheLog> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let log = cache_log(server);
        if done(&log) || std::time::Instant::now() >= deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The request log once no new line has arrived for 300 ms (at most 5 s):
/// for checks over every request made so far.
pub fn settled_cache_log(server: &Server) -> Vec<CacheLog> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut log = cache_log(server);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let next = cache_log(server);
        if next.len() == log.len() || std::time::Instant::now() >= deadline {
            return next;
        }
        log = next;
    }
}
