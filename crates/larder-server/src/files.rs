//! Distribution file and `.metadata` downloads: content-addressed, so
//! immutable and cacheable forever, with `ETag`, `HEAD` and byte ranges.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, BytesMut};
use larder_index::Sha256;
use larder_indexes::BlobHandle;

use crate::error::ApiError;
use larder_proxy::range::{RangeRequest, parse_range};

/// `Cache-Control` for content-addressed URLs.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// The strong ETag (quoted) of a content-addressed URL: its digest in hex,
/// then `suffix` (`-metadata` for a `.metadata` URL).
pub fn etag(sha256: &Sha256, suffix: &str) -> HeaderValue {
    sha256.with_hex(|hex| {
        let mut quoted = BytesMut::with_capacity(hex.len() + suffix.len() + 2);
        quoted.put_u8(b'"');
        quoted.put_slice(hex.as_bytes());
        quoted.put_slice(suffix.as_bytes());
        quoted.put_u8(b'"');
        HeaderValue::from_maybe_shared(quoted.freeze()).expect("hex and a plain suffix make a valid header value")
    })
}

/// Answers a request for a blob (with `etag` as its ETag), honouring
/// `If-None-Match`, `Range` and `If-Range`. A local blob is mapped for a
/// zero-copy send (see [`crate::sendfile`]); a remote one is streamed.
pub async fn serve_blob(
    blob: BlobHandle,
    etag: HeaderValue,
    content_type: &'static str,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let size = blob.size();
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if crate::pages::etag_matches(request, &etag) {
        return Ok(response(StatusCode::NOT_MODIFIED, headers, Body::empty()));
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));

    let range = match requested_range(request, &etag, size) {
        RangeRequest::Full => None,
        RangeRequest::Partial(range) => Some(range),
        RangeRequest::Unsatisfiable => {
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Ok(response(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty()));
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
    let body = match blob.into_local_file() {
        Ok(file) => {
            let bytes = crate::sendfile::map_file(file, size).map_err(ApiError::internal)?;
            Body::from(bytes.slice(start as usize..(start + length) as usize))
        }
        Err(remote) => Body::from_stream(remote.stream(start..start + length).await.map_err(|e| ApiError::blob(&e))?),
    };
    Ok(response(status, headers, body))
}

/// A response of these parts, put together directly (what `IntoResponse`
/// does for a tuple, without copying the headers over one by one).
pub(crate) fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
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
    parse_range(range, size)
}
