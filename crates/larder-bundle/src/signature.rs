//! Signed bundles: an ed25519 signature over the exact bytes of a bundle's
//! manifest. The manifest holds the sha256 and size of every blob the
//! bundle carries, and import checks each blob against it, so a signature
//! that verifies with a trusted key vouches for the whole bundle.
//!
//! Keys are PEM files as openssl writes them (PKCS#8 for the secret key,
//! SubjectPublicKeyInfo for the public one): `larder bundle-key generate`
//! makes a pair, and `openssl genpkey -algorithm ed25519` /
//! `openssl pkey -pubout` do too.
//!
//! The signature is its own tar entry ([`SIGNATURE_ENTRY`], right after the
//! manifest), a small JSON document naming the public key that made it.
//! What is signed is a fixed context string followed by the manifest bytes,
//! so a signature made for something else never passes for a bundle's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The name of the signature entry, right after the manifest.
pub const SIGNATURE_ENTRY: &str = "manifest.json.sig";
/// The `format` of a signature document.
const FORMAT: &str = "larder-bundle-signature";
/// The version of the signature format.
const VERSION: u32 = 1;
/// What precedes the manifest bytes in the signed message.
const CONTEXT: &[u8] = b"larder bundle manifest v1\0";

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PKCS#8 PEM ed25519 secret key.
    #[error("not an ed25519 secret key (PKCS#8 PEM, as `larder bundle-key generate` writes): {0}")]
    Secret(#[source] ed25519_dalek::pkcs8::Error),
    /// Not a SubjectPublicKeyInfo PEM ed25519 public key.
    #[error("not an ed25519 public key (PEM, as `larder bundle-key generate` writes to KEYFILE.pub): {0}")]
    Public(#[source] ed25519_dalek::pkcs8::spki::Error),
}

/// Why a bundle's signature is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Trusted keys were given and the bundle carries no signature.
    #[error("the bundle is not signed, and --trust asks for a signature by a trusted key")]
    Unsigned,
    /// The signature does not verify: the manifest or the signature changed.
    #[error("bad signature: the manifest was changed after it was signed (signature by {0})")]
    Bad(String),
    /// The signature verifies, but with a key that is not trusted.
    #[error("signed by {0}, which is not a trusted key (--trust)")]
    Untrusted(String),
    /// The signature entry is not a signature document.
    #[error("malformed {SIGNATURE_ENTRY}: {0}")]
    Malformed(String),
}

/// A secret key that signs bundles.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
        getrandom::fill(&mut seed).expect("the operating system provides random bytes");
        Self(SigningKey::from_bytes(&seed))
    }

    /// Reads a PKCS#8 PEM secret key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(text).map(Self).map_err(KeyError::Secret)
    }

    /// The key as PKCS#8 PEM (keep it secret).
    pub fn to_pem(&self) -> String {
        self.0.to_pkcs8_pem(LineEnding::LF).expect("an ed25519 key encodes").to_string()
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs a bundle manifest (its exact bytes).
    pub fn sign(&self, manifest: &[u8]) -> ManifestSignature {
        ManifestSignature { key: self.public_key(), signature: self.0.sign(&message(manifest)) }
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key())
    }
}

/// A public key that bundles may be signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM public key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        VerifyingKey::from_public_key_pem(text).map(Self).map_err(KeyError::Public)
    }

    /// The key as PEM.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("an ed25519 key encodes")
    }
}

/// `ed25519:` and the key's 32 bytes in base64: how logs and errors name it.
impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ed25519:{}", STANDARD.encode(self.0.as_bytes()))
    }
}

/// A bundle manifest's signature, and the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestSignature {
    key: PublicKey,
    signature: ed25519_dalek::Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureWire {
    format: String,
    version: u32,
    algorithm: String,
    key: String,
    signature: String,
}

impl ManifestSignature {
    /// The key that made the signature (not yet a trusted one).
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// The signature document.
    pub fn to_json(&self) -> String {
        let wire = SignatureWire {
            format: FORMAT.to_owned(),
            version: VERSION,
            algorithm: "ed25519".to_owned(),
            key: STANDARD.encode(self.key.0.as_bytes()),
            signature: STANDARD.encode(self.signature.to_bytes()),
        };
        serde_json::to_string_pretty(&wire).expect("a signature serializes")
    }

    /// Parses a signature document.
    pub fn from_json(text: &[u8]) -> Result<Self, SignatureError> {
        let malformed = |reason: String| SignatureError::Malformed(reason);
        let wire: SignatureWire = serde_json::from_slice(text).map_err(|e| malformed(e.to_string()))?;
        if (wire.format.as_str(), wire.version, wire.algorithm.as_str()) != (FORMAT, VERSION, "ed25519") {
            return Err(malformed(format!(
                "format {:?} version {} algorithm {:?}: this larder reads {FORMAT:?} version {VERSION}, ed25519",
                wire.format, wire.version, wire.algorithm
            )));
        }
        let bytes = |field: &str, text: &str| {
            STANDARD.decode(text).map_err(|e| malformed(format!("{field} is not base64: {e}")))
        };
        let key: [u8; 32] =
            bytes("key", &wire.key)?.try_into().map_err(|_| malformed("key is not 32 bytes".to_owned()))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|e| malformed(format!("key: {e}")))?;
        let signature: [u8; 64] = bytes("signature", &wire.signature)?
            .try_into()
            .map_err(|_| malformed("signature is not 64 bytes".to_owned()))?;
        Ok(Self { key: PublicKey(key), signature: ed25519_dalek::Signature::from_bytes(&signature) })
    }

    /// Checks that the signature was made over `manifest` by the key it
    /// names.
    pub fn verify(&self, manifest: &[u8]) -> Result<(), SignatureError> {
        self.key.0.verify(&message(manifest), &self.signature).map_err(|_| SignatureError::Bad(self.key.to_string()))
    }
}

/// Checks a bundle's signature (if any) over `manifest` against the
/// `trusted` keys, and returns the key that signed it.
///
/// With no trusted keys, an unsigned bundle passes and a signature is only
/// checked against its own key (which catches damage, not forgery). With
/// trusted keys, the bundle must be signed, the signature must verify, and
/// its key must be one of them.
pub fn check(
    signature: Option<&ManifestSignature>,
    manifest: &[u8],
    trusted: &[PublicKey],
) -> Result<Option<PublicKey>, SignatureError> {
    let Some(signature) = signature else {
        return if trusted.is_empty() { Ok(None) } else { Err(SignatureError::Unsigned) };
    };
    signature.verify(manifest)?;
    if !trusted.is_empty() && !trusted.contains(&signature.key) {
        return Err(SignatureError::Untrusted(signature.key.to_string()));
    }
    Ok(Some(signature.key))
}

fn message(manifest: &[u8]) -> Vec<u8> {
    [CONTEXT, manifest].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = br#"{"format":"larder-bundle","version":1,"blobs":{},"projects":[]}"#;

    #[test]
    fn keys_round_trip_through_pem() {
        let secret = SecretKey::generate();
        let again = SecretKey::from_pem(&secret.to_pem()).unwrap();
        assert_eq!(again.public_key(), secret.public_key());
        assert_eq!(PublicKey::from_pem(&secret.public_key().to_pem()).unwrap(), secret.public_key());
        assert!(matches!(PublicKey::from_pem(&secret.to_pem()), Err(KeyError::Public(_))));
        assert!(matches!(SecretKey::from_pem(&secret.public_key().to_pem()), Err(KeyError::Secret(_))));
    }

    #[test]
    fn reads_a_key_openssl_wrote() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410's example key).
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
                      MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                      -----END PUBLIC KEY-----\n";
        assert_eq!(SecretKey::from_pem(pem).unwrap().public_key(), PublicKey::from_pem(public).unwrap());
    }

    #[test]
    fn a_signature_passes_only_for_its_manifest_and_a_trusted_key() {
        let (secret, other) = (SecretKey::generate(), SecretKey::generate());
        let signature = ManifestSignature::from_json(secret.sign(MANIFEST).to_json().as_bytes()).unwrap();
        let key = secret.public_key();
        assert_eq!(check(Some(&signature), MANIFEST, &[key]), Ok(Some(key)));
        assert_eq!(check(Some(&signature), MANIFEST, &[other.public_key(), key]), Ok(Some(key)));
        assert_eq!(check(Some(&signature), MANIFEST, &[]), Ok(Some(key)));
        assert_eq!(check(None, MANIFEST, &[]), Ok(None));
        assert_eq!(check(None, MANIFEST, &[key]), Err(SignatureError::Unsigned));
        assert_eq!(
            check(Some(&signature), MANIFEST, &[other.public_key()]),
            Err(SignatureError::Untrusted(key.to_string()))
        );
        let edited = [MANIFEST, b" "].concat();
        assert_eq!(check(Some(&signature), &edited, &[key]), Err(SignatureError::Bad(key.to_string())));
        // A signature over the bare manifest (no context) is not accepted.
        let bare = ManifestSignature { key, signature: secret.0.sign(MANIFEST) };
        assert!(matches!(check(Some(&bare), MANIFEST, &[key]), Err(SignatureError::Bad(_))));
    }

    #[test]
    fn malformed_signature_documents_are_refused() {
        let good = SecretKey::generate().sign(MANIFEST).to_json();
        for (text, expected) in [
            ("not json".to_owned(), "expected"),
            (good.replace("larder-bundle-signature", "other"), "format \"other\""),
            (good.replace("\"key\": \"", "\"key\": \"AAAA"), "not 32 bytes"),
            (good.replace("\"signature\": \"", "\"signature\": \"!"), "not base64"),
            (good.replace("\"version\"", "\"extra\": 1, \"version\""), "unknown field"),
        ] {
            let error = ManifestSignature::from_json(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
