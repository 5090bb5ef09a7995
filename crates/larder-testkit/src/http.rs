//! A deliberately small HTTP/1.1 client over `std::net::TcpStream`.
//!
//! Tests of an index server need to see exactly what goes over the wire: no
//! redirect is followed, no body is decompressed, and the request target is
//! sent byte for byte as given (no path normalization, no re-encoding), which
//! is what the path-traversal tests need. Every request is sent with
//! `Connection: close` and the response is read to end of stream, then
//! de-framed (`Content-Length` or `chunked`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use url::Url;

/// How long one request may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in order received (names as sent by the server).
    pub headers: Vec<(String, String)>,
    /// The de-framed body (for `HEAD`, 204 and 304: whatever bytes followed
    /// the head, which should be none).
    pub body: Vec<u8>,
    /// Method and target of the request, for messages.
    pub request: String,
}

impl Response {
    /// The body with its `Content-Encoding: gzip` undone (the body as is
    /// when it has none).
    pub fn decoded_body(&self) -> Vec<u8> {
        if !self.header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
            return self.body.clone();
        }
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&self.body[..]), &mut plain)
            .unwrap_or_else(|e| panic!("{}: gzip body does not decompress: {e}", self.request));
        plain
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The header, or a panic naming the request.
    pub fn expect_header(&self, name: &str) -> &str {
        self.header(name).unwrap_or_else(|| panic!("{}: no {name} header in {:?}", self.request, self.headers))
    }

    /// The `Content-Type` media type without parameters, lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, or a panic showing it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.request, self.text()))
    }

    /// Panics (showing the response) unless the status is `status`.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Response {
        assert_eq!(self.status, status, "{}: unexpected status; {}", self.request, self.describe());
        self
    }

    /// Status, headers and the start of the body, for failure messages.
    pub fn describe(&self) -> String {
        let text = self.text();
        let snippet: String = text.chars().take(600).collect();
        format!("status {} headers {:?} body {:?}", self.status, self.headers, snippet)
    }
}

/// A request being built; see [`crate::Server::get`].
#[derive(Clone, Debug)]
pub struct Request {
    addr: SocketAddr,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request for `target` (origin-form, e.g. `/simple/?x=1`), sent
    /// verbatim.
    pub fn new(addr: SocketAddr, method: &str, target: &str) -> Request {
        Request { addr, method: method.to_owned(), target: target.to_owned(), headers: Vec::new(), body: Vec::new() }
    }

    /// A request for an absolute URL; it must point at `addr`. The target
    /// sent is the URL's path and query as the `url` crate serializes them.
    pub fn to_url(addr: SocketAddr, method: &str, url: &Url) -> Request {
        let port = url.port_or_known_default();
        assert!(
            url.scheme() == "http" && port == Some(addr.port()) && url.host_str() == Some(&addr.ip().to_string()),
            "URL {url} does not point at the server under test ({addr})"
        );
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        Request::new(addr, method, &target)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (and its `Content-Length`).
    pub fn body(self, body: impl Into<Vec<u8>>) -> Request {
        let body = body.into();
        let len = body.len().to_string();
        Request { body, ..self }.header("Content-Length", &len)
    }

    /// Sends the request and reads the whole response.
    pub fn send(&self) -> Response {
        let mut raw =
            format!("{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.method, self.target, self.addr);
        for (name, value) in &self.headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(&self.body);
        let head_only = self.method.eq_ignore_ascii_case("HEAD");
        exchange(self.addr, &raw, head_only, &format!("{} {}", self.method, self.target))
    }
}

/// Sends `request` (a complete HTTP/1.1 request, head and body, exactly as
/// given) and reads the response to end of stream. The request should carry
/// `Connection: close`.
pub fn send_raw(addr: SocketAddr, request: &[u8]) -> Response {
    let first_line = String::from_utf8_lossy(request).lines().next().unwrap_or("").to_owned();
    let head_only = first_line.starts_with("HEAD ");
    exchange(addr, request, head_only, &first_line)
}

fn exchange(addr: SocketAddr, request: &[u8], head_only: bool, label: &str) -> Response {
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_or_else(|e| panic!("{label}: connect {addr}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("set timeout");
    stream.write_all(request).unwrap_or_else(|e| panic!("{label}: write: {e}"));
    let mut bytes = Vec::new();
    if let Err(e) = stream.read_to_end(&mut bytes) {
        // A reset after a complete response (server closed without reading
        // everything) is tolerated; anything else is fatal.
        if bytes.is_empty() {
            panic!("{label}: read: {e}");
        }
    }
    parse_response(&bytes, head_only, label)
}

/// Parses a complete response read to end of stream.
pub fn parse_response(bytes: &[u8], head_only: bool, label: &str) -> Response {
    let head_end = find(bytes, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{label}: no complete response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..head_end]).unwrap_or_else(|e| panic!("{label}: head not UTF-8: {e}"));
    let rest = &bytes[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    assert!(version.starts_with("HTTP/1."), "{label}: bad status line {status_line:?}");
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{label}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("{label}: bad header line {l:?}"));
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut response = Response { status, headers, body: Vec::new(), request: label.to_owned() };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        response.body = rest.to_vec();
        return response;
    }
    let chunked = response
        .header_all("transfer-encoding")
        .iter()
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
    if chunked {
        response.body = dechunk(rest).unwrap_or_else(|e| panic!("{label}: bad chunked body: {e}"));
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().unwrap_or_else(|_| panic!("{label}: bad Content-Length {len:?}"));
        assert!(rest.len() >= len, "{label}: body truncated: Content-Length {len}, got {} bytes", rest.len());
        assert!(rest.len() == len, "{label}: {} bytes after a body of Content-Length {len}", rest.len() - len);
        response.body = rest.to_vec();
    } else {
        response.body = rest.to_vec();
    }
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a `chunked` transfer-coded body.
pub fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("missing chunk size line")?;
        let line = std::str::from_utf8(&data[..line_end]).map_err(|e| e.to_string())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        if &data[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        data = &data[size + 2..];
    }
}

/// Resolves `reference` (absolute, absolute-path or relative) against
/// `base`, as a browser or pip would.
pub fn resolve(base: &Url, reference: &str) -> Url {
    base.join(reference).unwrap_or_else(|e| panic!("cannot resolve {reference:?} against {base}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc", false, "t");
        assert_eq!((r.status, r.body.as_slice(), r.header("x-a")), (200, &b"abc"[..], Some("b")));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
            "t",
        );
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n", true, "t");
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), Some("30"));
    }

    #[test]
    fn resolves_references() {
        let page = Url::parse("http://127.0.0.1:1/simple/foo/").unwrap();
        assert_eq!(resolve(&page, "../../files/a/b.whl").as_str(), "http://127.0.0.1:1/files/a/b.whl");
        assert_eq!(resolve(&page, "/x").as_str(), "http://127.0.0.1:1/x");
        assert_eq!(resolve(&page, "http://127.0.0.1:1/y").as_str(), "http://127.0.0.1:1/y");
    }
}
