//! Simple API page handlers: the project list and project pages, with
//! content negotiation, name normalization redirects, ETags and serials.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use larder_index::{IndexDefinition, NormalizedName, PageFormat};
use larder_indexes::{IndexError, Indexes, Lookup, PageSource, ProjectListing};

use crate::AppState;
use crate::cache::{CACHE_HEADER, PageKey, RenderedPage};
use crate::error::ApiError;
use crate::metrics::Kind;
use crate::negotiate::{accepts_gzip, negotiate};

/// Where file links point, relative to a project page at
/// `/simple/<project>/`.
const FILES_FROM_PROJECT_PAGE: &str = "../../files/";

/// Where file links point, relative to `/<index>/simple/<project>/`.
const FILES_FROM_NAMED_PAGE: &str = "../../../files/";

/// What one render of a page gives every request that waited for it.
#[derive(Clone)]
pub enum Rendered {
    /// The page (also in the page cache).
    Page(Arc<RenderedPage>),
    /// No such project; how that was known.
    NotFound(&'static str),
    /// The indexes failed.
    Failed(Arc<IndexError>),
}

/// `GET /simple/`.
pub async fn project_list(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, ApiError> {
    let (request, uri) = (request.headers(), request.uri());
    let format = choose_format(uri, request)?;
    page_or_render(&state, Kind::list, (None, format, None), None, request).await
}

/// `GET /simple/<project>/`: redirects a non-normalized name, 404s an
/// unknown one.
pub async fn project_page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve_project_page(&state, &project, request.uri(), request.headers()).await
}

/// A project page of the default index: what [`project_page`] answers, and
/// what the hot route of [`crate::dispatch`] calls directly.
pub(crate) async fn serve_project_page(
    state: &AppState,
    project: &str,
    uri: &Uri,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_name(project)?;
    if name.as_str() != project {
        return Ok(redirect(&format!("../{name}/"), uri));
    }
    let format = choose_format(uri, request)?;
    page_or_render(state, Kind::page, (Some(name), format, None), None, request).await
}

/// Answers from the page cache, or renders the page once however many
/// requests miss it at the same time (they share the render). `index` is
/// the named index the key names (`None`: the default index).
pub(crate) async fn page_or_render(
    state: &AppState,
    kind: Kind,
    key: PageKey,
    index: Option<&IndexDefinition>,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(page) = state.pages.get(&key) {
        return Ok(page_response(state, kind, &page, page.outcome_on_reuse(), request));
    }
    let rendered_here = AtomicBool::new(false);
    let render = || async {
        if let Some(page) = state.pages.get(&key) {
            return Rendered::Page(page);
        }
        rendered_here.store(true, Ordering::Relaxed);
        render(state, &key, index).await
    };
    // Boxed: a render may fetch from the upstream, a much larger future
    // than a warm page's, which every request would otherwise carry (and
    // move) whole.
    match Box::pin(state.renders.run(&key, render)).await {
        Rendered::Page(page) => {
            let outcome = if rendered_here.load(Ordering::Relaxed) { page.outcome } else { page.outcome_on_reuse() };
            Ok(page_response(state, kind, &page, outcome, request))
        }
        Rendered::NotFound(outcome) => {
            let name = key.0.as_ref().map_or("", NormalizedName::as_str);
            state.metrics.count(kind, "not_found");
            let reason = match index {
                None => format!("no project named {name}"),
                Some(index) => format!("no project named {name} in index {}", index.name),
            };
            let mut response = ApiError::not_found(reason).into_response();
            response.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static(outcome));
            Ok(response)
        }
        Rendered::Failed(error) => {
            state.metrics.count(kind, "error");
            Err(ApiError::from(&*error))
        }
    }
}

/// Renders a page of `index` (`None`: the default index) from the indexes
/// and keeps it in the page cache.
async fn render(state: &AppState, key: &PageKey, index: Option<&IndexDefinition>) -> Rendered {
    let generation = state.pages.generation(&key.0);
    let format = key.1;
    let default;
    let (index, files_base) = match index {
        Some(index) => (index, FILES_FROM_NAMED_PAGE),
        None => {
            default = Indexes::default_index();
            (&default, FILES_FROM_PROJECT_PAGE)
        }
    };
    let Some(name) = &key.0 else {
        let listing = match state.indexes.named_project_list(index).await {
            Ok(listing) => listing,
            Err(error) => return Rendered::Failed(Arc::new(error)),
        };
        let fresh_for = listing.fresh_for;
        return match render_listing(listing, format).await {
            Ok(page) => {
                state.pages.insert(key.clone(), generation, fresh_for, page.clone());
                Rendered::Page(page)
            }
            Err(error) => Rendered::Failed(Arc::new(error)),
        };
    };
    let (page, source, fresh_for) = match state.indexes.named_project_page(index, name, files_base).await {
        Ok(Lookup::Found { page, source, fresh_for }) => (page, source, fresh_for),
        Ok(Lookup::NotFound { outcome }) => return Rendered::NotFound(outcome.map_or("local", |o| o.as_str())),
        Err(error) => return Rendered::Failed(Arc::new(error)),
    };
    let outcome = match source {
        PageSource::Local => "local",
        PageSource::Upstream(outcome) => outcome.as_str(),
    };
    let body = larder_index::render_project_page(&page, format);
    let rendered = Arc::new(RenderedPage::new(body, format, page.last_serial.unwrap_or(0), outcome));
    state.pages.insert(key.clone(), generation, fresh_for, rendered.clone());
    Rendered::Page(rendered)
}

/// Renders a project list as a page; its outcome is the upstream list's
/// (`local` when none is part of it).
async fn render_listing(listing: ProjectListing, format: PageFormat) -> Result<Arc<RenderedPage>, IndexError> {
    let outcome = listing.upstream.map_or("local", |o| o.as_str());
    let page = crate::list_page::render(listing, format, outcome).await.map_err(IndexError::Render)?;
    Ok(Arc::new(page))
}

/// `GET /simple/<project>` (no slash): redirects to the normalized page.
pub async fn project_page_without_slash(Path(project): Path<String>, uri: Uri) -> Result<Response, ApiError> {
    let name = parse_name(&project)?;
    Ok(redirect(&format!("{name}/"), &uri))
}

/// `GET /simple`: redirects to `/simple/`.
pub async fn project_list_without_slash(uri: Uri) -> Response {
    redirect("simple/", &uri)
}

/// An invalid name is a project that does not exist: 404, as the public
/// index answers (uv then tries its next index).
pub(crate) fn parse_name(project: &str) -> Result<NormalizedName, ApiError> {
    NormalizedName::new(project).map_err(|e| ApiError::not_found(e.to_string()))
}

/// A permanent redirect to a location relative to the request, keeping the
/// query string (so `?format=` survives).
pub(crate) fn redirect(location: &str, uri: &Uri) -> Response {
    match uri.query() {
        Some(query) => Redirect::permanent(&format!("{location}?{query}")).into_response(),
        None => Redirect::permanent(location).into_response(),
    }
}

/// `?format=` wins over `Accept`; only an unknown `?format=` is refused.
pub(crate) fn choose_format(uri: &Uri, request: &HeaderMap) -> Result<PageFormat, ApiError> {
    let not_acceptable = || {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable format: this index serves application/vnd.pypi.simple.v1+json, \
             application/vnd.pypi.simple.v1+html and text/html",
        )
    };
    let format =
        uri.query().and_then(|query| url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "format"));
    if let Some((_, format)) = format {
        // PEP 691 writes `?format=application/vnd.pypi.simple.v1+json` with
        // a literal `+`, which form decoding turns into a space.
        return PageFormat::from_media_type(&format.replace(' ', "+")).ok_or_else(not_acceptable);
    }
    let accept = request.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    Ok(negotiate(accept))
}

fn page_response(
    state: &AppState,
    kind: Kind,
    page: &RenderedPage,
    outcome: &'static str,
    request: &HeaderMap,
) -> Response {
    state.metrics.count(kind, outcome);
    let mut headers = page.headers.clone();
    if outcome != "hit" {
        headers.insert(CACHE_HEADER, HeaderValue::from_static(outcome));
    }
    let (status, body) = if etag_matches(request, &page.etag) {
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_LENGTH);
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if !page.gzip {
        (StatusCode::OK, Body::from(page.body.clone()))
    } else if accepts_gzip(request.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok())) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (StatusCode::OK, Body::from(page.body.clone()))
    } else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.plain_len));
        (StatusCode::OK, crate::list_page::decompressed(page.body.clone()))
    };
    crate::files::response(status, headers, body)
}

/// True when `If-None-Match` lists `etag` (or is `*`).
pub fn etag_matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(value) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag)
}
