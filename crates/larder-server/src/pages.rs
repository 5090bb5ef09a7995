//! Simple API page handlers: the project list and project pages, with
//! content negotiation, name normalization redirects, ETags and serials.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use larder_index::{NormalizedName, PageFormat};
use larder_indexes::{pages, LOCAL_INDEX};

use crate::cache::RenderedPage;
use crate::error::ApiError;
use crate::negotiate::negotiate;
use crate::AppState;

/// Where file links point, relative to a project page at
/// `/simple/<project>/`.
const FILES_FROM_PROJECT_PAGE: &str = "../../files/";

/// `GET /simple/`.
pub async fn project_list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let format = choose_format(&query, &request)?;
    let key = (None, format);
    let page = match state.pages.get(&key) {
        Some(page) => page,
        None => {
            let generation = state.pages.generation();
            let list = pages::project_list(&state.store, LOCAL_INDEX).await?;
            let body = larder_index::render_project_list(&list, format);
            let page = Arc::new(RenderedPage::new(body, format, list.last_serial.unwrap_or(0)));
            state.pages.insert(key, generation, page.clone());
            page
        }
    };
    Ok(page_response(&page, &request))
}

/// `GET /simple/<project>/`: redirects a non-normalized name, 404s an
/// unknown one.
pub async fn project_page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let name = parse_name(&project)?;
    if name.as_str() != project {
        return Ok(redirect(&format!("../{name}/"), &uri));
    }
    let format = choose_format(&query, &request)?;
    let key = (Some(name), format);
    if let Some(page) = state.pages.get(&key) {
        return Ok(page_response(&page, &request));
    }
    let generation = state.pages.generation();
    let name = key.0.as_ref().expect("a project key has a name");
    let Some(page) = pages::project_page(&state.store, LOCAL_INDEX, name, FILES_FROM_PROJECT_PAGE).await? else {
        return Err(ApiError::not_found(format!("no project named {name}")));
    };
    let body = larder_index::render_project_page(&page, format);
    let rendered = Arc::new(RenderedPage::new(body, format, page.last_serial.unwrap_or(0)));
    state.pages.insert(key, generation, rendered.clone());
    Ok(page_response(&rendered, &request))
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

fn parse_name(project: &str) -> Result<NormalizedName, ApiError> {
    NormalizedName::new(project).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A permanent redirect to a location relative to the request, keeping the
/// query string (so `?format=` survives).
fn redirect(location: &str, uri: &Uri) -> Response {
    match uri.query() {
        Some(query) => Redirect::permanent(&format!("{location}?{query}")).into_response(),
        None => Redirect::permanent(location).into_response(),
    }
}

/// `?format=` wins over `Accept`.
fn choose_format(query: &HashMap<String, String>, request: &HeaderMap) -> Result<PageFormat, ApiError> {
    let not_acceptable = || {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable format: this index serves application/vnd.pypi.simple.v1+json, \
             application/vnd.pypi.simple.v1+html and text/html",
        )
    };
    if let Some(format) = query.get("format") {
        return PageFormat::from_media_type(format).ok_or_else(not_acceptable);
    }
    let accept = request.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    negotiate(accept).ok_or_else(not_acceptable)
}

fn page_response(page: &RenderedPage, request: &HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(header::ETAG, page.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0, must-revalidate"));
    headers.insert("x-pypi-last-serial", HeaderValue::from(page.last_serial));
    if etag_matches(request, &page.etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(page.format.content_type()));
    (headers, page.body.clone()).into_response()
}

/// True when `If-None-Match` lists `etag` (or is `*`).
pub fn etag_matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(value) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}
