//! The URL layout, the request log, and the small handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use larder_index::Sha256;
use larder_indexes::{BlobHandle, FileAccess};
use larder_proxy::{FileBody, FilePart, FileRequest, FileStreamBody};

use crate::AppState;
use crate::auth::{basic_token, denied};
use crate::cache::CACHE_HEADER;
use crate::dispatch::{FILE_ROUTE, PAGE_ROUTE};
use crate::error::ApiError;
use crate::file_cache::Seen;
use crate::files::{IMMUTABLE, etag, serve_blob};
use crate::metrics::Kind;
use crate::pages;
use crate::{named, request_log, upload, web};

/// The suffix of PEP 658 metadata URLs.
const METADATA_SUFFIX: &str = ".metadata";

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(web::home))
        .route("/static/larder.css", get(web::stylesheet))
        .route("/pypi/{project}/", get(web::project))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/simple", get(pages::project_list_without_slash))
        .route("/simple/", get(pages::project_list))
        .route("/simple/{project}", get(pages::project_page_without_slash))
        .route(PAGE_ROUTE, get(pages::project_page))
        .route(FILE_ROUTE, get(file))
        .route("/pypi/{project}/json", get(named::default_json))
        .route("/pypi/{project}/{version}/json", get(named::default_release_json))
        .route("/api/{index}/{project}/{action}", post(named::change))
        .route("/{index}/", get(web::index_home).post(upload::upload))
        .route("/{index}/pypi/{project}/", get(web::index_project))
        .route("/{index}", get(web::index_home_without_slash).post(upload::upload))
        .route("/{index}/simple", get(named::project_list_without_slash))
        .route("/{index}/simple/", get(named::project_list))
        .route("/{index}/simple/{project}", get(named::project_page_without_slash))
        .route("/{index}/simple/{project}/", get(named::project_page))
        .route("/{index}/pypi/{project}/json", get(named::named_json))
        .route("/{index}/pypi/{project}/{version}/json", get(named::named_release_json))
        .fallback(|| async { ApiError::not_found("no such page") })
        .layer(middleware::from_fn_with_state(state.clone(), request_log::log_request))
        .with_state(state)
}

/// `GET /health`: 200 when the metadata database and the blob store both
/// answer (within [`HEALTH_WITHIN`] each), else 503 saying which did not.
async fn health(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    let unavailable = state.indexes.check_store(HEALTH_WITHIN).await;
    if unavailable.is_empty() {
        return Ok("ok\n");
    }
    let reasons: Vec<String> = unavailable.iter().map(ToString::to_string).collect();
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reasons.join("; ")))
}

/// How long `/health` waits for each part of the store.
const HEALTH_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /metrics`: Prometheus text format. The sizes by kind are read
/// from the store again when due (see [`crate::metrics::SIZES_EVERY`]).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if state.metrics.sizes_due() {
        match state.indexes.store_sizes().await {
            Ok(sizes) => state.metrics.set_sizes(&sizes),
            Err(error) => tracing::warn!(%error, "cannot read the store's sizes for /metrics"),
        }
    }
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /files/<sha256>/<filename>` and `.../<filename>.metadata`.
async fn file(
    State(state): State<Arc<AppState>>,
    Path((sha256, filename)): Path<(String, String)>,
    method: Method,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    serve_file(&state, &sha256, &filename, &method, &request).await
}

/// A file URL (or its `.metadata`, or its provenance): what [`file`]
/// answers, and what the hot route of [`crate::dispatch`] calls directly.
pub(crate) async fn serve_file(
    state: &AppState,
    sha256: &str,
    filename: &str,
    method: &Method,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let sha256: Sha256 =
        sha256.parse().map_err(|e: larder_index::InvalidDigest| ApiError::bad_request(e.to_string()))?;
    if let Some(distribution) = filename.strip_suffix(larder_indexes::PROVENANCE_SUFFIX) {
        return Box::pin(provenance_response(state, &sha256, distribution, request)).await;
    }
    let (kind, result) = match filename.strip_suffix(METADATA_SUFFIX) {
        Some(distribution) => {
            let served_as = (metadata_etag(&sha256), METADATA_TYPE);
            let look_up = || metadata_response(state, &sha256, filename, distribution, request);
            (Kind::metadata, remembered_or(state, &sha256, filename, request, served_as, look_up).await)
        }
        None => {
            let served_as = (etag(&sha256, ""), FILE_TYPE);
            let look_up = || file_response(state, &sha256, filename, method, request);
            (Kind::file, remembered_or(state, &sha256, filename, request, served_as, look_up).await)
        }
    };
    let outcome = match &result {
        Ok((_, outcome)) => outcome,
        Err(error) if error.status() == StatusCode::NOT_FOUND => "not_found",
        Err(_) => "error",
    };
    state.metrics.count(kind, outcome);
    let mut response = result.map_or_else(IntoResponse::into_response, |(response, _)| response);
    response.headers_mut().insert(CACHE_HEADER, HeaderValue::from_static(outcome));
    Ok(response)
}

/// The PEP 740 provenance of a file.
async fn provenance_response(
    state: &AppState,
    sha256: &Sha256,
    distribution: &str,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let access = state.indexes.file_access(sha256, distribution).await?;
    allow_file(state, &access, request).await?;
    let document = state.indexes.provenance(sha256, distribution).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], document).into_response())
}

/// A file's answer and its cache outcome.
type FileAnswer = Result<(Response, &'static str), ApiError>;

/// Answers a file URL whose blob the file cache remembers at once, as
/// `served_as` (ETag, `Content-Type`); else runs `look_up`, boxed: it may
/// fetch from the upstream, a much larger future than a remembered file's,
/// which every request would otherwise carry (and move) whole.
async fn remembered_or<F: Future<Output = FileAnswer>>(
    state: &AppState,
    sha256: &Sha256,
    filename: &str,
    request: &HeaderMap,
    served_as: (HeaderValue, &'static str),
    look_up: impl FnOnce() -> F,
) -> FileAnswer {
    match remembered(state, sha256, filename, request).await? {
        Some(blob) => Ok((serve_blob(blob, served_as.0, served_as.1, request).await?, "hit")),
        None => Box::pin(look_up()).await,
    }
}

/// A file the file cache does not know: asks the indexes (which may fetch
/// it from the upstream).
async fn file_response(
    state: &AppState,
    sha256: &Sha256,
    filename: &str,
    method: &Method,
    request: &HeaderMap,
) -> FileAnswer {
    let seen = seen(state);
    let access = state.indexes.file_access(sha256, filename).await?;
    allow_file(state, &access, request).await?;
    let wanted = file_request(method, request, sha256);
    match state.indexes.file(sha256, filename, &wanted).await? {
        FileBody::Stored(blob) => {
            state.files.insert(sha256, filename, blob.info().sha256, access, seen);
            Ok((serve_blob(blob, etag(sha256, ""), FILE_TYPE, request).await?, "hit"))
        }
        FileBody::Streaming(body) => Ok((streaming_response(body, sha256), "miss")),
        FileBody::Head { size } => Ok((cold_head_response(size, sha256), "miss")),
        FileBody::Part(part) => Ok((cold_part_response(part, sha256), "miss")),
        FileBody::Unsatisfiable { content_range } => {
            let mut headers = file_headers(sha256);
            if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            Ok(((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response(), "miss"))
        }
    }
}

/// What a file request asks for: `HEAD`; one byte range (a `Range` of a
/// single range, unless an `If-Range` names other content); or all of it.
fn file_request(method: &Method, request: &HeaderMap, sha256: &Sha256) -> FileRequest {
    if method == Method::HEAD {
        return FileRequest::Head;
    }
    let Some(range) = request.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return FileRequest::Whole;
    };
    let other_content = request.get(header::IF_RANGE).is_some_and(|v| *v != etag(sha256, ""));
    let single = http_range_header::parse_range_header(range).is_ok_and(|parsed| parsed.ranges.len() == 1);
    if single && !other_content { FileRequest::Range(range.to_owned()) } else { FileRequest::Whole }
}

/// The `.metadata` of a file the file cache does not know, from the
/// indexes (which may fetch it, or a range of its wheel, from the
/// upstream). `filename` is the URL's (`<distribution>.metadata`).
async fn metadata_response(
    state: &AppState,
    sha256: &Sha256,
    filename: &str,
    distribution: &str,
    request: &HeaderMap,
) -> FileAnswer {
    let seen = seen(state);
    let access = state.indexes.file_access(sha256, distribution).await?;
    allow_file(state, &access, request).await?;
    let (blob, outcome) = state.indexes.metadata(sha256, distribution).await?;
    state.files.insert(sha256, filename, blob.info().sha256, access, seen);
    Ok((serve_blob(blob, metadata_etag(sha256), METADATA_TYPE, request).await?, outcome.as_str()))
}

/// The `Content-Type` of distribution files.
const FILE_TYPE: &str = "application/octet-stream";

/// The `Content-Type` of `.metadata` files.
const METADATA_TYPE: &str = "text/plain; charset=utf-8";

/// The ETag of a file's `.metadata`.
fn metadata_etag(sha256: &Sha256) -> HeaderValue {
    etag(sha256, "-metadata")
}

/// The blob of a file URL from the file cache, when it knows the blob and
/// the blob is still there (a gone blob is forgotten, and the caller looks
/// the file up again), once the request may have it.
async fn remembered(
    state: &AppState,
    sha256: &Sha256,
    filename: &str,
    request: &HeaderMap,
) -> Result<Option<BlobHandle>, ApiError> {
    let Some(stored) = state.files.get(sha256, filename, seen(state)) else {
        return Ok(None);
    };
    allow_file(state, &stored.access, request).await?;
    let blob = state.indexes.blob(&stored.blob).await?;
    if blob.is_none() {
        state.files.forget(sha256, filename);
    }
    Ok(blob)
}

/// What a file lookup made now is current with.
fn seen(state: &AppState) -> Seen {
    Seen { changes: state.pages.changes(), definitions: state.indexes.registry().generation() }
}

/// Refuses a request without a token that may download a protected file
/// (a public one costs nothing).
async fn allow_file(state: &AppState, access: &FileAccess, request: &HeaderMap) -> Result<(), ApiError> {
    if *access == FileAccess::Public {
        return Ok(());
    }
    let token = basic_token(request)?;
    // Boxed: a lookup in the store, a large future the public files'
    // requests should not carry.
    Box::pin(larder_indexes::authorize_file(state.indexes.store(), access, token.as_deref())).await.map_err(denied)
}

/// The headers of every answer about a file not stored yet: its ETag,
/// immutable caching, and byte ranges on offer.
fn file_headers(sha256: &Sha256) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FILE_TYPE));
    headers.insert(header::ETAG, etag(sha256, ""));
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers
}

/// A file still arriving from upstream: the whole body, with its length
/// when the upstream announced it.
fn streaming_response(body: FileStreamBody, sha256: &Sha256) -> Response {
    let mut headers = file_headers(sha256);
    if let Some(total) = body.total {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    (headers, Body::from_stream(body.stream)).into_response()
}

/// `HEAD` of a file not stored: its length when known, nothing fetched.
fn cold_head_response(size: Option<u64>, sha256: &Sha256) -> Response {
    let mut headers = file_headers(sha256);
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    (headers, Body::empty()).into_response()
}

/// A range of a file not stored, as the upstream sent it.
fn cold_part_response(part: FilePart, sha256: &Sha256) -> Response {
    let mut headers = file_headers(sha256);
    if let Ok(value) = HeaderValue::from_str(&part.content_range) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Some(length) = part.length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    (StatusCode::PARTIAL_CONTENT, headers, Body::from_stream(part.stream)).into_response()
}
