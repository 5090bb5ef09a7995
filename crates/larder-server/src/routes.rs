//! The URL layout, the request log, and the small handlers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use larder_indexes::LOCAL_INDEX;
use larder_index::Sha256;

use crate::error::ApiError;
use crate::files::serve_blob;
use crate::pages;
use crate::AppState;

/// The suffix of PEP 658 metadata URLs.
const METADATA_SUFFIX: &str = ".metadata";

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/health", get(health))
        .route("/simple", get(pages::project_list_without_slash))
        .route("/simple/", get(pages::project_list))
        .route("/simple/{project}", get(pages::project_page_without_slash))
        .route("/simple/{project}/", get(pages::project_page))
        .route("/files/{sha256}/{filename}", get(file))
        .fallback(|| async { ApiError::not_found("no such page") })
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Logs every request with its outcome.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// `GET /health`: 200 when the store answers.
async fn health(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    state
        .store
        .db
        .last_serial()
        .await
        .map(|_| "ok\n")
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}")))
}

/// `GET /`: a small page for people.
async fn home(State(state): State<Arc<AppState>>) -> Result<Html<String>, ApiError> {
    let projects = state.store.db.projects(LOCAL_INDEX).await?.len();
    Ok(Html(format!(
        "<!DOCTYPE html>\n<html><head><title>larder</title></head><body>\n\
         <h1>larder</h1>\n<p>{projects} project(s). Browse the <a href=\"simple/\">simple index</a>.</p>\n\
         <p>pip: <code>pip install --index-url &lt;this URL&gt;simple/ NAME</code></p>\n</body></html>\n"
    )))
}

/// `GET /files/<sha256>/<filename>` and `.../<filename>.metadata`.
async fn file(
    State(state): State<Arc<AppState>>,
    Path((sha256, filename)): Path<(String, String)>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let sha256: Sha256 = sha256.parse().map_err(|e: larder_index::InvalidDigest| ApiError::bad_request(e.to_string()))?;
    let (filename, wants_metadata) = match filename.strip_suffix(METADATA_SUFFIX) {
        Some(distribution) => (distribution, true),
        None => (filename.as_str(), false),
    };
    let not_found = || ApiError::not_found(format!("no file {filename} with sha256 {sha256}"));
    let record = state.store.db.file(LOCAL_INDEX, &sha256, filename).await?.ok_or_else(not_found)?;
    if !wants_metadata {
        let path = state.store.blobs.path(&record.sha256);
        return serve_blob(&path, record.size, &sha256.to_hex(), "application/octet-stream", &request).await;
    }
    let metadata = record
        .metadata_sha256
        .filter(|_| record.serve_metadata)
        .ok_or_else(|| ApiError::not_found(format!("{filename} has no core metadata file")))?;
    let path = state.store.blobs.path(&metadata);
    let size = tokio::fs::metadata(&path).await.map_err(ApiError::internal)?.len();
    serve_blob(&path, size, &metadata.to_hex(), "text/plain; charset=utf-8", &request).await
}
