//! Requests to the upstream list: ordered fallback, retries with backoff,
//! conditional page requests, bounded page bodies, streamed file bodies.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use larder_index::{NormalizedName, ProjectPage, Sha256};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE};
use url::Url;

use crate::config::UpstreamConfig;
use crate::stats::UpstreamStats;

/// What larder asks upstream pages for: JSON first, HTML accepted.
const PAGE_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The header in which an index states a project's (or the index's) last
/// change serial.
const LAST_SERIAL: reqwest::header::HeaderName = reqwest::header::HeaderName::from_static("x-pypi-last-serial");

/// The largest upstream page body read (the largest real project pages are
/// a few tens of megabytes).
pub const MAX_PAGE_BYTES: usize = 128 * 1024 * 1024;

/// The largest project list read (a whole public index lists hundreds of
/// thousands of projects in some tens of megabytes).
pub const MAX_LIST_BYTES: usize = 512 * 1024 * 1024;

/// Every upstream failed; one line per attempt says why.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {}", .attempts.join("; "))]
pub struct FetchFailure {
    /// What was being fetched.
    pub what: String,
    /// Each failed attempt, as `<url>: <reason>`.
    pub attempts: Vec<String>,
}

/// A validator from an earlier fetch of a page, for a conditional request.
#[derive(Clone, Debug)]
pub struct Validator {
    /// The page URL that answered.
    pub source_url: Url,
    /// Its `ETag`.
    pub etag: String,
}

/// The answer to a project page request.
#[derive(Debug)]
pub enum PageFetch {
    /// A page, parsed.
    Page(Box<FetchedPage>),
    /// The upstream that gave the validator says nothing changed.
    NotModified,
    /// Every upstream answered 404 (or 410).
    NotFound,
}

/// A project page fetched and parsed.
#[derive(Debug)]
pub struct FetchedPage {
    /// The parsed page, with absolute upstream URLs.
    pub page: ProjectPage,
    /// The URL that answered (after redirects).
    pub source_url: Url,
    /// Its `ETag`, for the next conditional request.
    pub etag: Option<String>,
    /// The SHA-256 of the body, to skip rewriting an unchanged page.
    pub body_digest: Sha256,
}

/// The answer to a request for part of a file.
pub enum RangeAnswer {
    /// `206`: the part, and its `Content-Range` (`bytes <first>-<last>/<size>`).
    Partial {
        /// The `Content-Range` header.
        content_range: String,
        /// The part's bytes.
        body: FileStream,
    },
    /// `416`: the range is outside the file; the `Content-Range` header
    /// (`bytes */<size>`) when given.
    Unsatisfiable {
        /// The `Content-Range` header.
        content_range: Option<String>,
    },
    /// `200`: the upstream does not serve ranges, and sends the whole file.
    Whole(FileStream),
}

/// The slowest a file body may arrive, in bytes per second, averaged over
/// each period of the upstream's timeout: an upstream that trickles a
/// byte now and then (never waiting long enough for a read to time out)
/// is given up on instead of holding the download forever.
pub const MIN_FILE_RATE: u64 = 1024;

/// A file body being received.
pub struct FileStream {
    response: reqwest::Response,
    stats: UpstreamStats,
    /// The period over which [`MIN_FILE_RATE`] is checked.
    window: Duration,
    window_start: Instant,
    window_bytes: u64,
}

impl FileStream {
    fn new(response: reqwest::Response, upstream: &Upstream) -> Self {
        let window = upstream.config.timeout;
        Self { response, stats: upstream.stats.clone(), window, window_start: Instant::now(), window_bytes: 0 }
    }

    /// The `Content-Length` the upstream announced.
    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The next chunk of the body; `None` at the end. A connection cut
    /// before the announced length is an error, and so is a body arriving
    /// slower than [`MIN_FILE_RATE`].
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let chunk = self.response.chunk().await.map_err(|source| {
            self.stats.errors.inc();
            BodyError::Cut { chain: error_chain(&source), source }
        })?;
        let length = chunk.as_ref().map_or(0, Bytes::len);
        self.stats.received(length);
        self.window_bytes += length as u64;
        let elapsed = self.window_start.elapsed();
        if chunk.is_some() && elapsed >= self.window {
            if (self.window_bytes as f64) < MIN_FILE_RATE as f64 * elapsed.as_secs_f64() {
                return Err(BodyError::TooSlow { bytes: self.window_bytes, elapsed });
            }
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        Ok(chunk)
    }
}

/// Why a file body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed or was cut.
    #[error("body cut short: {chain}")]
    Cut {
        /// The error and its causes, in one line.
        chain: String,
        /// The HTTP client's error.
        source: reqwest::Error,
    },
    /// The body arrived slower than [`MIN_FILE_RATE`].
    #[error("the upstream sent {bytes} bytes in {elapsed:.1?}, slower than the minimum of {MIN_FILE_RATE} bytes/s")]
    TooSlow {
        /// Bytes received in the period.
        bytes: u64,
        /// The period.
        elapsed: Duration,
    },
}

struct Upstream {
    config: UpstreamConfig,
    client: reqwest::Client,
    stats: UpstreamStats,
}

/// The configured upstreams, in order of preference.
pub struct Upstreams {
    list: Vec<Upstream>,
}

/// Why the upstream list could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The CA bundle could not be read.
    #[error("cannot read the CA bundle {path}: {reason}")]
    CaBundle {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for {url}: {reason}")]
    Client {
        /// The upstream.
        url: Url,
        /// What went wrong.
        reason: String,
    },
}

impl Upstreams {
    /// Builds one HTTP client per upstream (each may trust its own CAs).
    pub fn new(configs: Vec<UpstreamConfig>) -> Result<Self, SetupError> {
        let list = configs
            .into_iter()
            .map(|config| {
                let client = build_client(&config)?;
                Ok(Upstream { config, client, stats: UpstreamStats::default() })
            })
            .collect::<Result<_, SetupError>>()?;
        Ok(Self { list })
    }

    /// True when no upstream is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The upstream URLs and how many requests each has been sent.
    pub fn request_counts(&self) -> impl Iterator<Item = (&Url, u64)> {
        self.list.iter().map(|u| (&u.config.url, u.stats.requests.get()))
    }

    /// The upstream URLs and what each has cost.
    pub fn stats(&self) -> impl Iterator<Item = (&Url, &UpstreamStats)> {
        self.list.iter().map(|u| (&u.config.url, &u.stats))
    }

    /// Fetches a project page from the first upstream that has it. With a
    /// validator, the upstream that gave it is asked conditionally.
    pub async fn fetch_page(
        &self,
        name: &NormalizedName,
        validator: Option<&Validator>,
    ) -> Result<PageFetch, FetchFailure> {
        let mut attempts = Vec::new();
        let mut not_found = 0;
        for upstream in &self.list {
            let url = upstream.config.project_url(name);
            let etag = validator.filter(|v| v.source_url == url).map(|v| v.etag.as_str());
            match upstream.fetch_page(&url, name, etag, &mut attempts).await {
                Some(PageFetch::NotFound) => not_found += 1,
                Some(answer) => return Ok(answer),
                None => {}
            }
        }
        if not_found == self.list.len() {
            return Ok(PageFetch::NotFound);
        }
        Err(FetchFailure { what: format!("no upstream answered for project {name}"), attempts })
    }

    /// Fetches the project list (`/simple/`) from the first upstream that
    /// answers with one `read` accepts: `read` gets the body (at most
    /// [`MAX_LIST_BYTES`]) and its `Content-Type`, and says why it cannot
    /// read it (then the next upstream is asked).
    pub async fn fetch_project_list_with<T, F, Fut>(&self, mut read: F) -> Result<T, FetchFailure>
    where
        F: FnMut(Bytes, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let mut attempts = Vec::new();
        for upstream in &self.list {
            let url = &upstream.config.url;
            let headers = [(ACCEPT, PAGE_ACCEPT.to_owned())];
            let Some((mut response, _)) = upstream.send_with_retries(url, &headers, &mut attempts).await else {
                continue;
            };
            if !response.status().is_success() {
                attempts.push(format!("{url}: HTTP {}", response.status()));
                continue;
            }
            let content_type = header_string(&response, CONTENT_TYPE);
            let parsed = match read_bounded(&mut response, MAX_LIST_BYTES).await {
                Ok(body) => {
                    upstream.stats.received(body.len());
                    read(body, content_type).await
                }
                Err(reason) => Err(reason),
            };
            match parsed {
                Ok(list) => return Ok(list),
                Err(reason) => attempts.push(format!("{url}: {reason}")),
            }
        }
        Err(FetchFailure { what: "no upstream answered with its project list".into(), attempts })
    }

    /// Starts downloading a file. The client of the upstream whose origin
    /// matches the URL is used (with its credentials and CAs); otherwise
    /// the first upstream's client, without credentials.
    pub async fn fetch_file(&self, url: &Url) -> Result<FileStream, FetchFailure> {
        let mut attempts = Vec::new();
        let upstream = self.for_file(url)?;
        match upstream.send_with_retries(url, &[], &mut attempts).await {
            Some((response, _)) if response.status().is_success() => Ok(FileStream::new(response, upstream)),
            Some((response, _)) => {
                attempts.push(format!("{url}: HTTP {}", response.status()));
                Err(FetchFailure { what: format!("cannot fetch {url}"), attempts })
            }
            None => Err(FetchFailure { what: format!("cannot fetch {url}"), attempts }),
        }
    }

    /// Asks for part of a file (`range`, a `Range` header value) as
    /// [`Upstreams::fetch_file`] asks for all of it.
    pub async fn fetch_file_range(&self, url: &Url, range: &str) -> Result<RangeAnswer, FetchFailure> {
        let mut attempts = Vec::new();
        let upstream = self.for_file(url)?;
        let failure = |attempts| FetchFailure { what: format!("cannot fetch {range} of {url}"), attempts };
        let Some((response, _)) = upstream.send_with_retries(url, &[(RANGE, range.to_owned())], &mut attempts).await
        else {
            return Err(failure(attempts));
        };
        let body = |response| FileStream::new(response, upstream);
        let content_range = header_string(&response, CONTENT_RANGE);
        match (response.status(), content_range) {
            (StatusCode::PARTIAL_CONTENT, Some(content_range)) => {
                Ok(RangeAnswer::Partial { content_range, body: body(response) })
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, content_range) => Ok(RangeAnswer::Unsatisfiable { content_range }),
            (status, _) if status == StatusCode::OK => Ok(RangeAnswer::Whole(body(response))),
            (status, _) => {
                attempts.push(format!("{url}: HTTP {status} to a range request"));
                Err(failure(attempts))
            }
        }
    }

    /// Fetches a small body (such as a `.metadata` file) whole, up to
    /// `limit` bytes, within the upstream's timeout.
    pub async fn fetch_bytes(&self, url: &Url, limit: usize) -> Result<Bytes, FetchFailure> {
        let started = Instant::now();
        let mut stream = self.fetch_file(url).await?;
        let failure = |reason: String| FetchFailure { what: format!("cannot fetch {url}"), attempts: vec![reason] };
        let deadline = started + stream.window;
        let body = read_before(deadline, &mut stream.response, limit).await.map_err(failure)?;
        stream.stats.received(body.len());
        Ok(body)
    }

    /// The upstream to fetch a file from (see [`Upstreams::fetch_file`]).
    fn for_file(&self, url: &Url) -> Result<&Upstream, FetchFailure> {
        self.for_url(url).ok_or_else(|| FetchFailure {
            what: format!("cannot fetch {url}"),
            attempts: vec!["no upstream configured".into()],
        })
    }

    fn for_url(&self, url: &Url) -> Option<&Upstream> {
        self.list.iter().find(|u| u.config.url.origin() == url.origin()).or_else(|| self.list.first())
    }
}

impl Upstream {
    /// One upstream's answer for a page: `Some` for a definite answer
    /// (page, not modified, not found); `None` after recording why this
    /// upstream gave none.
    async fn fetch_page(
        &self,
        url: &Url,
        name: &NormalizedName,
        etag: Option<&str>,
        attempts: &mut Vec<String>,
    ) -> Option<PageFetch> {
        let mut headers = vec![(ACCEPT, PAGE_ACCEPT.to_owned())];
        if let Some(etag) = etag {
            headers.push((IF_NONE_MATCH, etag.to_owned()));
        }
        let (mut response, started) = self.send_with_retries(url, &headers, attempts).await?;
        match response.status() {
            StatusCode::NOT_MODIFIED if etag.is_some() => return Some(PageFetch::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => return Some(PageFetch::NotFound),
            status if !status.is_success() => {
                attempts.push(format!("{url}: HTTP {status}"));
                return None;
            }
            _ => {}
        }
        let source_url = response.url().clone();
        let content_type = header_string(&response, CONTENT_TYPE);
        let new_etag = header_string(&response, ETAG);
        let serial = header_string(&response, LAST_SERIAL).and_then(|serial| serial.trim().parse().ok());
        let body = match read_before(started + self.config.timeout, &mut response, MAX_PAGE_BYTES).await {
            Ok(body) => {
                self.stats.received(body.len());
                body
            }
            Err(reason) => {
                self.stats.errors.inc();
                attempts.push(format!("{url}: {reason}"));
                return None;
            }
        };
        match larder_index::parse::parse_project_page(&body, content_type.as_deref(), &source_url, name) {
            Ok(mut page) => Some(PageFetch::Page(Box::new(FetchedPage {
                page: {
                    // The serial a JSON page states, else the header's.
                    page.last_serial = page.last_serial.or(serial);
                    page
                },
                source_url,
                etag: new_etag,
                body_digest: Sha256::of(&body),
            }))),
            Err(error) => {
                tracing::warn!(%url, %error, "upstream sent an unreadable page");
                attempts.push(format!("{url}: {error}"));
                None
            }
        }
    }

    /// Sends a GET, trying again after connection errors, timeouts, 429 and
    /// 5xx answers, up to the configured retries. Each attempt must bring
    /// the response head within the timeout. Returns the last response
    /// (which may still be an error status) with the time its attempt
    /// started, or `None` when none came.
    async fn send_with_retries(
        &self,
        url: &Url,
        headers: &[(reqwest::header::HeaderName, String)],
        attempts: &mut Vec<String>,
    ) -> Option<(reqwest::Response, Instant)> {
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            self.stats.requests.inc();
            let mut request = self.client.get(url.clone());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if let Some(credentials) = &self.config.credentials
                && url.origin() == self.config.url.origin()
            {
                request = request.basic_auth(&credentials.username, credentials.password.as_ref());
            }
            let started = Instant::now();
            let sent = tokio::time::timeout(self.config.timeout, request.send()).await;
            let Ok(sent) = sent else {
                self.stats.errors.inc();
                tracing::warn!(%url, attempt, "upstream failure: no response head in time");
                attempts.push(format!("{url}: no response within {:?}", self.config.timeout));
                continue;
            };
            match sent {
                Ok(response) if is_retryable(response.status()) => {
                    self.stats.answered(started.elapsed());
                    self.stats.errors.inc();
                    tracing::warn!(%url, status = response.status().as_u16(), attempt, "upstream failure: error status");
                    if attempt == self.config.retries {
                        return Some((response, started));
                    }
                    attempts.push(format!("{url}: HTTP {}", response.status()));
                }
                Ok(response) => {
                    self.stats.answered(started.elapsed());
                    tracing::debug!(%url, status = response.status().as_u16(), millis = started.elapsed().as_millis() as u64, "upstream answered");
                    return Some((response, started));
                }
                Err(error) => {
                    self.stats.errors.inc();
                    let reason = error_chain(&error);
                    tracing::warn!(%url, %reason, attempt, "upstream failure: request failed");
                    attempts.push(format!("{url}: {reason}"));
                }
            }
        }
        None
    }
}

fn build_client(config: &UpstreamConfig) -> Result<reqwest::Client, SetupError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("larder/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.timeout)
        .read_timeout(config.timeout);
    if let Some(path) = &config.ca_bundle {
        let ca_error = |reason: String| SetupError::CaBundle { path: path.clone(), reason };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        if certificates.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| SetupError::Client { url: config.url.clone(), reason: error_chain(&e) })
}

fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(5))).min(Duration::from_secs(2))
}

fn header_string(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Reads a whole body (see [`read_bounded`]) unless `deadline` passes
/// first: a page request is bounded as a whole, not read by read.
async fn read_before(deadline: Instant, response: &mut reqwest::Response, limit: usize) -> Result<Bytes, String> {
    tokio::time::timeout_at(deadline, read_bounded(response, limit))
        .await
        .unwrap_or_else(|_| Err("the body did not arrive within the upstream timeout".to_owned()))
}

async fn read_bounded(response: &mut reqwest::Response, limit: usize) -> Result<Bytes, String> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(format!("body larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("body larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// An error and its causes on one line (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
