//! Parsing upstream Simple API pages (PEP 503 HTML and PEP 691 JSON) into
//! the page model of [`crate::simple`].
//!
//! The caching proxy fetches `/simple/` and `/simple/<project>/` from an
//! upstream index and hands the body here. Upstream answers may be HTML or
//! JSON whatever their `Content-Type` says, may use relative links, and may
//! be garbage: the parsers sniff the format, resolve every URL to an
//! absolute one, skip entries they cannot trust (hostile filenames,
//! unresolvable links, invalid names), and fail with a [`ParseError`] only
//! when the body as a whole is not a Simple API page. They never panic and
//! their work is linear in the size of the body.

mod html;
mod json;
mod tags;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

pub use url::Url;

use crate::NormalizedName;
use crate::filename::DistFilename;
use crate::simple::{FileEntry, ProjectList, ProjectListEntry, ProjectPage, ProjectStatus, sorted_versions};

/// The largest body the parsers accept, in bytes (256 MiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Parses an upstream project page (`/simple/<project>/`).
///
/// `content_type` is the response's `Content-Type`, which may be missing or
/// wrong: a body whose first non-whitespace character is `{` is JSON, one
/// whose first is `<` is HTML, and only other bodies follow the header (JSON
/// when it names a JSON type, HTML otherwise). `page_url` is the URL the
/// page was fetched from, after redirects; every file URL is resolved
/// against it (or against the page's `<base href>`). `name` is the project
/// that was asked for and becomes the page's name, whatever the page says.
pub fn parse_project_page(
    body: &[u8],
    content_type: Option<&str>,
    page_url: &Url,
    name: &NormalizedName,
) -> Result<ProjectPage, ParseError> {
    let page = Page::Project(name.clone());
    match sniff(body, content_type, &page)? {
        Format::Json(json) => json::project_page(json, page_url, name),
        Format::Html(text) => html::project_page(&text, page_url, name),
    }
    .map_err(|problem| problem.on(page))
}

/// Parses an upstream project list (`/simple/`).
///
/// Returns every project with a valid name (others are skipped), sorted and
/// deduplicated by normalized name, and the index's `_last-serial` when the
/// page is JSON and states it (HTML pages carry no serial; the
/// `X-PyPI-Last-Serial` header is the caller's to read). `content_type` is
/// used as by [`parse_project_page`].
pub fn parse_project_list(body: &[u8], content_type: Option<&str>) -> Result<ProjectList, ParseError> {
    let mut projects = Vec::new();
    let last_serial = for_each_listed_project(body, content_type, |display_name, last_serial| {
        if let Ok(name) = NormalizedName::new(display_name) {
            projects.push(ProjectListEntry { display_name: display_name.to_owned(), name, last_serial });
        }
    })?;
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    projects.dedup_by(|later, earlier| later.name == earlier.name);
    Ok(ProjectList { projects, last_serial })
}

/// Reads an upstream project list (`/simple/`) a project at a time, for
/// lists of any size: `on_project` gets each listed name as written
/// (trimmed, not checked: it may be invalid) and its `_last-serial` when
/// the list is JSON and says, in the order listed; nothing is kept per
/// project. Returns the list's `_last-serial`. Fails as
/// [`parse_project_list`] does (then `on_project` may have been called
/// for some projects already).
pub fn for_each_listed_project(
    body: &[u8],
    content_type: Option<&str>,
    on_project: impl FnMut(&str, Option<u64>),
) -> Result<Option<u64>, ParseError> {
    let page = Page::ProjectList;
    match sniff(body, content_type, &page)? {
        Format::Json(json) => json::for_each_project(json, on_project),
        Format::Html(text) => html::for_each_project(&text, on_project).map(|()| None),
    }
    .map_err(|problem| problem.on(page))
}

/// Why an upstream body could not be read as a Simple API page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body was taken for PEP 691 JSON but is not JSON at all.
    #[error("upstream {page} is not valid PEP 691 JSON: {detail}")]
    NotJson {
        /// The page that was being parsed.
        page: Page,
        /// What the JSON parser objected to, with line and column.
        detail: String,
    },
    /// The body is JSON or HTML, but not a Simple API page.
    #[error("upstream {page} is not a Simple API page: {detail}")]
    Malformed {
        /// The page that was being parsed.
        page: Page,
        /// What is wrong with it.
        detail: String,
    },
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("upstream {page} is {size} bytes, more than the {MAX_BODY_BYTES} bytes larder accepts for an index page")]
    TooLarge {
        /// The page that was being parsed.
        page: Page,
        /// The size of the body in bytes.
        size: usize,
    },
}

/// Which upstream page a [`ParseError`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// The project list, `/simple/`.
    ProjectList,
    /// One project's page, `/simple/<project>/`.
    Project(NormalizedName),
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProjectList => f.write_str("project list"),
            Self::Project(name) => write!(f, "page for {name}"),
        }
    }
}

/// A failure found by one of the format parsers, before the page it is
/// about is attached.
#[derive(Debug)]
enum Problem {
    /// See [`ParseError::NotJson`].
    NotJson(String),
    /// See [`ParseError::Malformed`].
    Malformed(String),
}

impl Problem {
    /// A [`Problem::Malformed`] with the given detail.
    fn malformed(detail: impl Into<String>) -> Self {
        Self::Malformed(detail.into())
    }

    /// The public error for this problem on `page`.
    fn on(self, page: Page) -> ParseError {
        match self {
            Self::NotJson(detail) => ParseError::NotJson { page, detail },
            Self::Malformed(detail) => ParseError::Malformed { page, detail },
        }
    }
}

/// A body with its format decided.
enum Format<'a> {
    /// JSON bytes (without a byte order mark).
    Json(&'a [u8]),
    /// HTML text, invalid UTF-8 replaced.
    Html(Cow<'a, str>),
}

/// Checks the size of `body` and decides its format (see
/// [`parse_project_page`]).
fn sniff<'a>(body: &'a [u8], content_type: Option<&str>, page: &Page) -> Result<Format<'a>, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge { page: page.clone(), size: body.len() });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let is_json = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => true,
        Some(b'<') => false,
        _ => content_type.is_some_and(names_json),
    };
    Ok(if is_json { Format::Json(body) } else { Format::Html(String::from_utf8_lossy(body)) })
}

/// True when a `Content-Type` value names a JSON type
/// (`application/json`, `application/vnd.pypi.simple.v1+json`, ...).
fn names_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.as_bytes();
    essence.len() >= 4 && essence[essence.len() - 4..].eq_ignore_ascii_case(b"json")
}

/// Fails when a page states a Simple API version whose major version is not
/// 1: PEP 629 requires clients to refuse a major version they do not know.
fn check_api_version(version: &str) -> Result<(), Problem> {
    let major = version.trim().split('.').next().unwrap_or_default();
    match major.parse::<u64>() {
        Ok(major) if major != 1 => Err(Problem::Malformed(format!(
            "it uses Simple API version {version}; larder understands version 1.x only"
        ))),
        _ => Ok(()),
    }
}

/// Resolves `reference` against `base`. Returns `None` when it is not a
/// URL, or when its scheme is neither HTTP(S) nor the scheme of `base` (a
/// page must not point the proxy at `file:` or `javascript:` URLs).
fn resolve(base: &Url, reference: &str) -> Option<Url> {
    let url = base.join(reference).ok()?;
    let allowed = matches!(url.scheme(), "http" | "https") || url.scheme() == base.scheme();
    allowed.then_some(url)
}

/// Resolves `reference` against `base` (see [`resolve`]) as a string.
fn resolve_to_string(base: &Url, reference: &str) -> Option<String> {
    resolve(base, reference).map(String::from)
}

/// A hash name and digest as the model stores them: the name lowercased and
/// made of ASCII letters, digits, `_` and `-`; the digest non-empty,
/// lowercased hex. Returns `None` for anything else.
fn hash_entry(name: &str, digest: &str) -> Option<(String, String)> {
    let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    let valid_digest = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_name && valid_digest).then(|| (name.to_ascii_lowercase(), digest.to_ascii_lowercase()))
}

/// Collects valid `(name, digest)` pairs into a hash map; invalid pairs are
/// skipped, and the first of two pairs with the same name wins.
fn hash_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    let mut hashes = BTreeMap::new();
    for (name, digest) in pairs.into_iter().filter_map(|(name, digest)| hash_entry(name, digest)) {
        hashes.entry(name).or_insert(digest);
    }
    hashes
}

/// True for filenames a page must not be trusted with: empty, `.` or `..`,
/// or containing a path separator or a control character (NUL included).
fn is_hostile_filename(filename: &str) -> bool {
    matches!(filename, "" | "." | "..") || filename.chars().any(|c| matches!(c, '/' | '\\') || c.is_control())
}

/// The trimmed text, or `None` when nothing is left.
fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A PEP 792 status from its marker and optional reason; `None` when the
/// marker is empty. Markers are lowercased so `Quarantined` is honoured.
fn project_status(status: &str, reason: Option<&str>) -> Option<ProjectStatus> {
    let status = non_empty(status)?.to_ascii_lowercase();
    Some(ProjectStatus { status, reason: reason.and_then(non_empty) })
}

/// The versions of the files that are distributions of `name`, sorted by
/// PEP 440; for pages that do not list their versions (HTML, JSON 1.0).
fn versions_of_files(files: &[FileEntry], name: &NormalizedName) -> Vec<String> {
    let versions: Vec<String> = files
        .iter()
        .filter_map(|file| DistFilename::parse_for(&file.filename, name).ok())
        .filter(|dist| dist.name() == name)
        .map(|dist| dist.version().to_string())
        .collect();
    sorted_versions(versions.iter().map(String::as_str))
}

#[cfg(test)]
mod tests;
