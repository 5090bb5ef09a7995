//! The multipart body of an upload, framed by `multer` with the boundary
//! and limits larder's server uses (its module compiled alone), each part
//! read as the upload handler reads it: the file part in chunks, the
//! others as text. Input: the `Content-Type` value, a newline, then the
//! body, fed in chunks of a size its first byte chooses (so that
//! boundaries fall across chunks).
#![no_main]

#[path = "../../crates/larder-server/src/upload_body.rs"]
mod upload_body;

use futures_util::FutureExt as _;
use libfuzzer_sys::fuzz_target;

/// A small file limit, so that the size checks are reached.
const LIMIT: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else { return };
    let Ok(content_type) = std::str::from_utf8(&data[..newline]) else { return };
    let Some(boundary) = upload_body::boundary(content_type) else { return };
    let body = &data[newline + 1..];
    let chunk = usize::from(body.first().copied().unwrap_or(1).max(1));
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        body.chunks(chunk).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let stream = futures_util::stream::iter(chunks);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, upload_body::constraints(LIMIT));
    // Every chunk is there already: each future is ready at once.
    while let Some(Ok(Some(mut field))) = multipart.next_field().now_or_never() {
        if field.name() == Some(upload_body::CONTENT_FIELD) {
            let _ = field.file_name();
            while let Some(Ok(Some(_))) = field.chunk().now_or_never() {}
        } else if !matches!(field.text().now_or_never(), Some(Ok(_))) {
            break;
        }
    }
});
