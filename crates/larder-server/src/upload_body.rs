//! The multipart framing of an upload as larder reads it: the boundary
//! from `Content-Type`, and the size limits on the whole body and on each
//! part. A module on its own (it needs only `multer`), so that the
//! `upload_body` fuzz target compiles it alone.

/// Room for the form fields around the file (metadata, long description,
/// attestations) on top of the file size limit.
pub(crate) const FORM_ALLOWANCE: u64 = 32 * 1024 * 1024;
/// The largest text field.
const MAX_FIELD_BYTES: u64 = 16 * 1024 * 1024;
/// The name of the part that carries the file.
pub(crate) const CONTENT_FIELD: &str = "content";

/// The multipart boundary of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type).ok()
}

/// The limits of an upload whose file may be `limit` bytes.
pub(crate) fn constraints(limit: u64) -> multer::Constraints {
    multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit.saturating_add(FORM_ALLOWANCE))
            .per_field(MAX_FIELD_BYTES)
            .for_field(CONTENT_FIELD, limit),
    )
}
