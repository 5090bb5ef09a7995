//! Distribution file and `.metadata` downloads: content-addressed, so
//! immutable and cacheable forever, with `ETag`, `HEAD` and byte ranges.

use std::ops::RangeInclusive;
use std::path::Path;

use axum::body::Body;
use bytes::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::ApiError;

/// `Cache-Control` for content-addressed URLs.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// Read size when streaming a blob.
const CHUNK: usize = 256 * 1024;

/// The largest blob served from a memory map; larger ones are streamed.
const MAX_MAPPED_BLOB: u64 = 64 * 1024 * 1024;

/// The blob's bytes as a read-only memory map: the kernel's page cache is
/// the only copy in memory, and the response is written from it without
/// reading through a buffer. `None` for a blob too large to map whole.
fn map_blob(path: &Path, size: u64) -> Result<Option<Bytes>, ApiError> {
    if size > MAX_MAPPED_BLOB {
        return Ok(None);
    }
    if size == 0 {
        return Ok(Some(Bytes::new()));
    }
    let file = std::fs::File::open(path).map_err(ApiError::internal)?;
    // SAFETY: blob files are immutable: they are written under a temporary
    // name and renamed into place, and never truncated or rewritten; a
    // rename or removal leaves a live mapping intact.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(ApiError::internal)?;
    Ok(Some(Bytes::from_owner(map)))
}

/// Answers a request for the blob at `path` (of `size` bytes, with digest
/// `sha256` as its ETag), honouring `If-None-Match`, `Range` and `If-Range`.
pub async fn serve_blob(
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
    let body = match map_blob(path, size)? {
        Some(bytes) => Body::from(bytes.slice(start as usize..(start + length) as usize)),
        None => {
            let mut file = tokio::fs::File::open(path).await.map_err(ApiError::internal)?;
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start)).await.map_err(ApiError::internal)?;
            }
            Body::from_stream(ReaderStream::with_capacity(file.take(length), CHUNK))
        }
    };
    Ok((status, headers, body).into_response())
}

enum RangeRequest {
    Full,
    Partial(RangeInclusive<u64>),
    Unsatisfiable,
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
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        return RangeRequest::Full;
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => RangeRequest::Partial(ranges[0].clone()),
        Ok(_) => RangeRequest::Full,
        Err(_) => RangeRequest::Unsatisfiable,
    }
}
