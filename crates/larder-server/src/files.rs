//! Distribution file and `.metadata` downloads: content-addressed, so
//! immutable and cacheable forever, with `ETag`, `HEAD` and byte ranges.

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::range::RangeRequest;

/// `Cache-Control` for content-addressed URLs.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// The blob's bytes, mapped for a zero-copy send (see [`crate::sendfile`]).
/// A blob that is gone (removed since it was looked up) is not found.
fn open_blob(path: &Path) -> Result<Bytes, ApiError> {
    let opened = std::fs::File::open(path).and_then(crate::sendfile::map_file);
    opened.map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => ApiError::not_found("the file is no longer stored"),
        _ => ApiError::internal(error),
    })
}

/// Answers a request for the blob at `path` (of `size` bytes, with digest
/// `sha256` as its ETag), honouring `If-None-Match`, `Range` and `If-Range`.
pub fn serve_blob(
    path: &Path,
    size: u64,
    sha256: &str,
    content_type: &'static str,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let etag = HeaderValue::from_str(&format!("\"{sha256}\"")).expect("hex is a valid header value");
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if crate::pages::etag_matches(request, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));

    let range = match requested_range(request, &etag, size) {
        RangeRequest::Full => None,
        RangeRequest::Partial(range) => Some(range),
        RangeRequest::Unsatisfiable => {
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
        }
    };
    let (status, start, length) = match range {
        None => (StatusCode::OK, 0, size),
        Some(range) => {
            let content_range = format!("bytes {}-{}/{size}", range.start(), range.end());
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("ascii"));
            (StatusCode::PARTIAL_CONTENT, *range.start(), range.end() - range.start() + 1)
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let bytes = open_blob(path)?;
    if bytes.len() as u64 != size {
        return Err(ApiError::internal(format!("{} holds {} bytes, {size} expected", path.display(), bytes.len())));
    }
    let body = Body::from(bytes.slice(start as usize..(start + length) as usize));
    Ok((status, headers, body).into_response())
}

/// Reads `Range` (one range only; several are answered with the whole file,
/// which RFC 9110 allows) and `If-Range` (a stale validator means the whole
/// file).
fn requested_range(request: &HeaderMap, etag: &HeaderValue, size: u64) -> RangeRequest {
    let Some(range) = request.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Full;
    };
    if request.get(header::IF_RANGE).is_some_and(|v| v != etag) {
        return RangeRequest::Full;
    }
    crate::range::parse_range(range, size)
}
