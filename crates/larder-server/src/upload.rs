//! `POST /<index>/`: the legacy upload API (twine, `uv publish`, poetry,
//! pdm, flit). The multipart body is streamed: the file part goes to the
//! indexes layer chunk by chunk, the other parts are kept as text, and a
//! body over the size limit is answered with 413 before more of it is read
//! (at once from `Content-Length`, else when the count passes the limit).
//! Never redirected: twine aborts on any 3xx.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use larder_index::upload::FormFields;
use larder_indexes::{Scope, Upload, UploadError, Uploaded};

use crate::AppState;
use crate::auth::{named_index, require};
use crate::error::ApiError;
use crate::upload_body;

/// Handles an upload to `index`.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let index = named_index(&state, &index).await?;
    let headers = request.headers().clone();
    let token = require(&state, &index, &headers, Scope::Upload).await?;
    let limit = state.max_upload_bytes;
    if content_length(&headers).is_some_and(|length| length > limit.saturating_add(upload_body::FORM_ALLOWANCE)) {
        return Err(too_large(limit));
    }
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(upload_body::boundary)
        .ok_or_else(|| ApiError::bad_request("an upload is a multipart/form-data POST"))?;
    let body: Body = request.into_body();
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, upload_body::constraints(limit));
    let mut fields = FormFields::new();
    let mut upload = None;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, limit))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != upload_body::CONTENT_FIELD {
            fields.push((name, field.text().await.map_err(|e| multipart_error(e, limit))?));
            continue;
        }
        if upload.is_some() {
            return Err(ApiError::bad_request("the upload form has more than one 'content' part"));
        }
        let filename =
            field.file_name().ok_or_else(|| ApiError::bad_request("the 'content' part has no filename"))?.to_owned();
        let mut receiving =
            Upload::start(state.indexes.store(), &index, &filename, limit).await.map_err(upload_error)?;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
            receiving.write(&chunk).await.map_err(upload_error)?;
        }
        upload = Some(receiving);
    }
    let upload = upload.ok_or_else(|| upload_error(UploadError::NoContent))?;
    let (project, filename) = (upload.project().clone(), upload.filename().to_owned());
    let outcome = upload
        .finish(state.indexes.store(), &fields, token.as_ref().map(|t| t.id.as_str()))
        .await
        .map_err(upload_error)?;
    state.pages.invalidate(&project);
    let said = match outcome {
        Uploaded::Added => "uploaded",
        Uploaded::AlreadyPresent => "already present (same content): nothing changed",
    };
    tracing::info!(index = %index.name, %filename, token = token.as_ref().map(|t| t.id.as_str()), outcome = said, "upload");
    Ok((StatusCode::OK, format!("{filename}: {said}\n")).into_response())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is larger than the limit of {limit} bytes"))
}

fn multipart_error(error: multer::Error, limit: u64) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(limit),
        other => ApiError::bad_request(format!("malformed upload body: {other}")),
    }
}

fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge(limit) => too_large(limit),
        UploadError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, error.to_string()),
        UploadError::NotHosted(_) => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, error.to_string()),
        UploadError::Blob(error) => ApiError::blob(&error),
        UploadError::Db(error) => ApiError::database(&error),
        UploadError::Form(_)
        | UploadError::Filename(_)
        | UploadError::NoContent
        | UploadError::Metadata(_)
        | UploadError::Deleted(_)
        | UploadError::Closed { .. }
        | UploadError::SecondSdist { .. } => ApiError::bad_request(error.to_string()),
    }
}
