//! The web pages for people: `/` (and `/<index>/`) to search an index's
//! projects by name (the upstream's whole list included) and see how to
//! point pip and uv at it, with the index's and the store's figures;
//! `/pypi/<project>/` (and `/<index>/pypi/<project>/`) for a project's
//! versions, files and core metadata. Plain HTML rendered here, one
//! stylesheet (`/static/larder.css`), no script; every value from a
//! project, an upstream or a request is escaped.

mod render;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use larder_index::{CoreMetadata, CoreMetadataLink, FileEntry, IndexDefinition, Sha256};
use larder_indexes::{Indexes, Lookup, Scope};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{named_index, require};
use crate::error::ApiError;
use crate::pages::parse_name;

pub use render::Figures;

/// Search results shown at most.
const MAX_RESULTS: usize = 50;

/// How long a project page waits for core metadata not stored yet.
const METADATA_WAIT: Duration = Duration::from_secs(5);

/// The stylesheet.
const STYLESHEET: &str = include_str!("larder.css");

/// The query of an index page.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    /// The name searched for.
    q: Option<String>,
}

/// The query of a project page.
#[derive(Debug, Default, Deserialize)]
pub struct VersionQuery {
    /// The version shown (the latest when absent).
    version: Option<String>,
}

/// Which index a page is about, and where its pages are.
struct Place {
    index: Arc<IndexDefinition>,
    /// `None` for the default index.
    named: Option<String>,
    /// This server's URL, as the client reached it.
    base: String,
}

impl Place {
    async fn of(state: &AppState, index: Option<String>, headers: &HeaderMap) -> Result<Self, ApiError> {
        let base = state.public_url.clone().unwrap_or_else(|| base_url(headers));
        let Some(name) = index else {
            return Ok(Self { index: Arc::new(Indexes::default_index()), named: None, base });
        };
        let index = named_index(state, &name).await?;
        require(state, &index, headers, Scope::Read).await?;
        Ok(Self { index, named: Some(name), base })
    }

    /// The Simple API root of this index.
    fn simple_url(&self) -> String {
        match &self.named {
            Some(name) => format!("{}{name}/simple/", self.base),
            None => format!("{}simple/", self.base),
        }
    }

    /// The web page of this index.
    fn home_url(&self) -> String {
        match &self.named {
            Some(name) => format!("{}{name}/", self.base),
            None => self.base.clone(),
        }
    }
}

/// This server's root URL as the client reached it (when no public URL is
/// configured): the `Host` header
/// (when it is a plain host and port) and `X-Forwarded-Proto` (https
/// behind a TLS proxy), else the loopback default.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)))
        .unwrap_or("127.0.0.1:3141");
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}/", if https { "https" } else { "http" })
}

/// `GET /`.
pub async fn home(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    index_page(&state, None, query, &headers).await
}

/// `GET /<index>/`.
pub async fn index_home(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    index_page(&state, Some(index), query, &headers).await
}

/// `GET /<index>` (no slash): to the index's page when there is such an
/// index, else 404 (what a browser's `/favicon.ico` gets).
pub async fn index_home_without_slash(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    named_index(&state, &index).await?;
    Ok(crate::pages::redirect(&format!("{index}/"), &uri))
}

async fn index_page(
    state: &AppState,
    index: Option<String>,
    query: SearchQuery,
    headers: &HeaderMap,
) -> Result<Html<String>, ApiError> {
    let place = Place::of(state, index, headers).await?;
    let listing = state.indexes.named_project_list(&place.index).await?;
    let query = query.q.map(|q| q.chars().take(200).collect::<String>()).filter(|q| !q.trim().is_empty());
    let hits = query.as_deref().map(|q| listing.search(q, MAX_RESULTS));
    let figures = figures(state, &listing).await;
    Ok(Html(render::index_page(&place, query.as_deref(), hits.as_ref(), &figures)))
}

/// The figures an index page shows: the index's projects, and the
/// store's files by kind. Further figures (from the cache's own
/// statistics) go in here.
async fn figures(state: &AppState, listing: &larder_indexes::ProjectListing) -> Figures {
    let mut figures = Figures::default();
    figures.push("Projects stored here", listing.stored_count().to_string());
    match (listing.upstream_count(), listing.upstream) {
        (Some(count), Some(outcome)) => {
            figures.push("Projects upstream", format!("{count} (list {})", outcome.as_str()))
        }
        _ if state.indexes.proxy().is_some() => figures.push("Projects upstream", "list not available".to_owned()),
        _ => {}
    }
    match state.indexes.store_sizes().await {
        Ok(sizes) => {
            for (kind, size) in [
                ("hosted", sizes.hosted),
                ("mirrored", sizes.mirrored),
                ("cached", sizes.cached),
                ("evicted", sizes.evicted),
            ] {
                figures.push(kind_label(kind), format!("{} files, {}", size.files, render::human_size(size.bytes)));
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read the store's sizes for the web page"),
    }
    let (pages, bytes) = state.pages.usage();
    figures.push("Pages in memory", format!("{pages}, {}", render::human_size(bytes)));
    figures
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "hosted" => "Files hosted",
        "mirrored" => "Files mirrored",
        "cached" => "Files cached",
        _ => "Files evicted",
    }
}

/// `GET /pypi/<project>/`.
pub async fn project(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    project_page(&state, None, &project, query, &headers).await
}

/// `GET /<index>/pypi/<project>/`.
pub async fn index_project(
    State(state): State<Arc<AppState>>,
    Path((index, project)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    project_page(&state, Some(index), &project, query, &headers).await
}

async fn project_page(
    state: &AppState,
    index: Option<String>,
    project: &str,
    query: VersionQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_name(project)?;
    if name.as_str() != project {
        return Ok(axum::response::Redirect::permanent(&format!("../{name}/")).into_response());
    }
    let place = Place::of(state, index, headers).await?;
    let files_base = if place.named.is_some() { "../../../files/" } else { "../../files/" };
    let page = match state.indexes.named_project_page(&place.index, &name, files_base).await? {
        Lookup::Found { page, .. } => page,
        Lookup::NotFound { .. } => return Err(ApiError::not_found(format!("no project named {name}"))),
    };
    let version = query.version.or_else(|| render::latest_version(&page)).unwrap_or_default();
    let files = render::files_of(&page, &name, &version);
    let mut stored = Vec::with_capacity(files.len());
    for file in &files {
        stored.push(match file.hashes.get("sha256").and_then(|h| h.parse::<Sha256>().ok()) {
            Some(sha256) => state.indexes.is_stored(&sha256).await,
            None => false,
        });
    }
    let metadata = core_metadata(state, &files).await;
    let display_name = state
        .indexes
        .named_project_list(&place.index)
        .await
        .ok()
        .and_then(|listing| listing.get(name.as_str()).map(|p| p.display_name.to_owned()))
        .or_else(|| metadata.as_ref().map(|m| m.name.clone()))
        .unwrap_or_else(|| name.to_string());
    let view = render::ProjectView { name: &name, display_name: &display_name, page: &page, version: &version };
    Ok(Html(render::project_page(&place, &view, &files, &stored, metadata.as_ref())).into_response())
}

/// The core metadata of the version shown: of its first file that has a
/// metadata file (read from the upstream by ranges when not stored yet),
/// within [`METADATA_WAIT`].
async fn core_metadata(state: &AppState, files: &[&FileEntry]) -> Option<CoreMetadata> {
    let file = files.iter().find(|f| matches!(f.core_metadata, CoreMetadataLink::Present(_)))?;
    let sha256: Sha256 = file.hashes.get("sha256")?.parse().ok()?;
    let read = async {
        let (blob, _) = state.indexes.metadata(&sha256, &file.filename).await.ok()?;
        CoreMetadata::parse(&blob.read_all().await.ok()?).ok()
    };
    tokio::time::timeout(METADATA_WAIT, read).await.ok().flatten()
}

/// `GET /static/larder.css`.
pub async fn stylesheet() -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
    ];
    (headers, STYLESHEET).into_response()
}
