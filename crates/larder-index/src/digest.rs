//! SHA-256 digests: the keys of the blob store.

use std::fmt;
use std::str::FromStr;

use sha2::Digest;

/// A SHA-256 digest. Displays and parses as 64 lowercase hex digits, so a
/// value of this type is always safe to use as a path component.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

/// The string is not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a sha256 digest (64 hex digits): {0:?}")]
pub struct InvalidDigest(pub String);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The lowercase hex form.
    pub fn to_hex(&self) -> String {
        self.with_hex(str::to_owned)
    }

    /// Runs `f` on the lowercase hex form, kept on the stack.
    pub fn with_hex<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut digits = [0u8; 64];
        hex::encode_to_slice(self.0, &mut digits).expect("64 digits for 32 bytes");
        f(std::str::from_utf8(&digits).expect("hex digits are ASCII"))
    }
}

impl FromStr for Sha256 {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        if text.len() != 64 {
            return Err(InvalidDigest(text.to_owned()));
        }
        hex::decode_to_slice(text, &mut bytes).map_err(|_| InvalidDigest(text.to_owned()))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_hex(|hex| f.write_str(hex))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// An incremental SHA-256 computation.
#[derive(Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Sha256 {
        Sha256(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hex_and_rejects_junk() {
        let digest = Sha256::of(b"abc");
        assert_eq!(digest.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digest.to_hex().parse::<Sha256>().unwrap(), digest);
        for bad in ["", "ba78", "../../etc/passwd", &"g".repeat(64), &"a".repeat(65)] {
            assert!(bad.parse::<Sha256>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn incremental_hash_matches_one_shot() {
        let mut hasher = Hasher::default();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.finish(), Sha256::of(b"abc"));
    }
}
