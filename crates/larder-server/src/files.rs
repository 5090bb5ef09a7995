//! Distribution file and `.metadata` downloads: content-addressed, so
//! immutable and cacheable forever, with `ETag`, `HEAD` and byte ranges.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

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

/// The largest blob kept in memory: wheels and metadata files of the size
/// installs fetch again and again; larger files are streamed from disk.
const MAX_CACHED_BLOB: u64 = 8 * 1024 * 1024;

/// Recently served blobs, kept in memory (bounded by bytes, least recently
/// used first out), so a warm download is one copy to the socket instead
/// of reads through the blocking thread pool. Blobs never change, so an
/// entry never goes stale.
pub struct BlobCache {
    blobs: quick_cache::sync::Cache<PathBuf, Bytes, BlobWeight>,
}

#[derive(Clone)]
struct BlobWeight;

impl quick_cache::Weighter<PathBuf, Bytes> for BlobWeight {
    fn weight(&self, _path: &PathBuf, bytes: &Bytes) -> u64 {
        bytes.len() as u64 + 128
    }
}

impl BlobCache {
    /// A cache of at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self { blobs: quick_cache::sync::Cache::with_weighter(1024, max_bytes, BlobWeight) }
    }

    /// The blob's bytes, from memory or read whole into it; `None` for a
    /// blob too large to keep.
    async fn get(&self, path: &Path, size: u64) -> Result<Option<Bytes>, ApiError> {
        if size > MAX_CACHED_BLOB {
            return Ok(None);
        }
        let bytes = self
            .blobs
            .get_or_insert_async(path, async { tokio::fs::read(path).await.map(Bytes::from) })
            .await
            .map_err(ApiError::internal)?;
        Ok(Some(bytes))
    }
}

/// Answers a request for the blob at `path` (of `size` bytes, with digest
/// `sha256` as its ETag), honouring `If-None-Match`, `Range` and `If-Range`.
pub async fn serve_blob(
    cache: &BlobCache,
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
    let body = match cache.get(path, size).await? {
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
