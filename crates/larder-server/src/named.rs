//! The routes of named indexes: `/<index>/simple/...` pages (same formats,
//! negotiation and headers as `/simple/`), the JSON API at
//! `/pypi/<project>/json` (default index) and `/<index>/pypi/...`, and the
//! admin API `POST /api/<index>/<project>/{yank,unyank,delete,status}`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use larder_index::{IndexDefinition, NormalizedName, ProjectStatus};
use larder_indexes::{Change, ChangeError, Indexes, Scope, Target};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{named_index, require};
use crate::error::ApiError;
use crate::metrics::Kind;
use crate::pages::{choose_format, page_or_render, parse_name, redirect};

/// Where JSON API file links point (path-absolute: JSON readers resolve
/// them against the API URL, whatever scheme and host it had).
const FILES_FOR_JSON_API: &str = "/files/";

/// `GET /<index>/simple/`.
pub async fn project_list(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let index = named_index(&state, &index).await?;
    require(&state, &index, request.headers(), Scope::Read).await?;
    let format = choose_format(request.uri(), request.headers())?;
    let key = (None, format, Some(index.name.clone()));
    page_or_render(&state, Kind::list, key, Some(&index), request.headers()).await
}

/// `GET /<index>/simple/<project>/`.
pub async fn project_page(
    State(state): State<Arc<AppState>>,
    Path((index, project)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (headers, uri) = (request.headers(), request.uri());
    let index = named_index(&state, &index).await?;
    require(&state, &index, headers, Scope::Read).await?;
    let name = parse_name(&project)?;
    if name.as_str() != project {
        return Ok(redirect(&format!("../{name}/"), uri));
    }
    let format = choose_format(uri, headers)?;
    let key = (Some(name), format, Some(index.name.clone()));
    page_or_render(&state, Kind::page, key, Some(&index), headers).await
}

/// `GET /<index>/simple/<project>` (no slash): redirects to the page.
pub async fn project_page_without_slash(
    Path((_, project)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let name = parse_name(&project)?;
    Ok(redirect(&format!("{name}/"), &uri))
}

/// `GET /<index>/simple`: redirects to `/<index>/simple/`.
pub async fn project_list_without_slash(uri: Uri) -> Response {
    redirect("simple/", &uri)
}

/// `GET /pypi/<project>/json` (the default index).
pub async fn default_json(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    json_api(&state, &Indexes::default_index(), &project, None).await
}

/// `GET /pypi/<project>/<version>/json` (the default index).
pub async fn default_release_json(
    State(state): State<Arc<AppState>>,
    Path((project, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    json_api(&state, &Indexes::default_index(), &project, Some(&version)).await
}

/// `GET /<index>/pypi/<project>/json`.
pub async fn named_json(
    State(state): State<Arc<AppState>>,
    Path((index, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let index = named_index(&state, &index).await?;
    require(&state, &index, &headers, Scope::Read).await?;
    json_api(&state, &index, &project, None).await
}

/// `GET /<index>/pypi/<project>/<version>/json`.
pub async fn named_release_json(
    State(state): State<Arc<AppState>>,
    Path((index, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let index = named_index(&state, &index).await?;
    require(&state, &index, &headers, Scope::Read).await?;
    json_api(&state, &index, &project, Some(&version)).await
}

async fn json_api(
    state: &AppState,
    index: &IndexDefinition,
    project: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let name = parse_name(project)?;
    let (body, last_serial) =
        state.indexes.json_api(index, &name, version, FILES_FOR_JSON_API).await?.ok_or_else(|| {
            let what = version.map_or_else(|| format!("project {name}"), |v| format!("release {v} of {name}"));
            ApiError::not_found(format!("no {what} in index {}", index.name))
        })?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (HeaderName::from_static("x-pypi-last-serial"), HeaderValue::from(last_serial)),
    ];
    Ok((headers, body).into_response())
}

/// The body of an admin request: one release or one file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    version: Option<String>,
    filename: Option<String>,
    reason: Option<String>,
}

/// The body of a status change: a PEP 792 status and an optional reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    status: String,
    reason: Option<String>,
}

/// `POST /api/<index>/<project>/<yank|unyank|delete>` with a JSON body
/// `{"version": ...}` or `{"filename": ...}` (and `"reason"` for a yank),
/// and `POST /api/<index>/<project>/status` with `{"status": ...}` (and
/// `"reason"`).
pub async fn change(
    State(state): State<Arc<AppState>>,
    Path((index, project, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let index = named_index(&state, &index).await?;
    require(&state, &index, &headers, Scope::Admin).await?;
    let name: NormalizedName = parse_name(&project)?;
    if action == "status" {
        return set_status(&state, &index, &name, &body).await;
    }
    let request: ChangeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON object with version or filename: {e}")))?;
    let target = match (request.version, request.filename) {
        (Some(version), None) => Target::Release(version),
        (None, Some(filename)) => Target::File(filename),
        _ => return Err(ApiError::bad_request("give exactly one of version and filename")),
    };
    let change = match action.as_str() {
        "yank" => Change::Yank(request.reason.unwrap_or_default()),
        "unyank" => Change::Unyank,
        "delete" => Change::Delete,
        other => return Err(ApiError::not_found(format!("no action {other:?}: use yank, unyank, delete or status"))),
    };
    let changed = state.indexes.change_files(&index, &name, &target, &change).await.map_err(change_error)?;
    state.pages.invalidate(&name);
    let body = serde_json::json!({ "index": index.name, "project": name.as_str(), "action": action, "files": changed });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// Sets a hosted project's PEP 792 status.
async fn set_status(
    state: &AppState,
    index: &IndexDefinition,
    name: &NormalizedName,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request: StatusRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON object with status (and reason): {e}")))?;
    let status = ProjectStatus { status: request.status, reason: request.reason };
    state.indexes.set_project_status(index, name, status.clone()).await.map_err(change_error)?;
    state.pages.invalidate(name);
    let body = serde_json::json!({
        "index": index.name, "project": name.as_str(), "status": status.status, "reason": status.reason
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

fn change_error(error: ChangeError) -> ApiError {
    match error {
        ChangeError::NotFound(reason) => ApiError::not_found(reason),
        ChangeError::NotHosted(_) => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, error.to_string()),
        ChangeError::Status(_) => ApiError::bad_request(error.to_string()),
        ChangeError::Index(error) => error.into(),
    }
}
