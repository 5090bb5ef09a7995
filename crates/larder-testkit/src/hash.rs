//! Digests as the packaging world spells them.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The lowercase hex SHA-256 of `data`, as index pages and `--hash` use it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The SHA-256 of `data` as a wheel's `RECORD` spells it: urlsafe base64
/// without padding, prefixed `sha256=`.
pub fn record_digest(data: &[u8]) -> String {
    format!("sha256={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(record_digest(b""), "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    }
}
