//! The legacy upload API's form (what twine, `uv publish`, poetry, pdm and
//! flit send): its fields, the digests it carries, and the checks that tie
//! the form, the filename and the file's own core metadata together.
//!
//! Nothing here trusts the form: every digest it supplies is compared with
//! one computed from the bytes received ([`UploadDigests`]), and the name
//! and version must agree with the filename and with the metadata read from
//! the file itself.

use std::str::FromStr;

use base64::Engine;
use blake2::Digest;
use pep440_rs::Version;

use crate::filename::{DistFilename, FilenameError, PackageType};
use crate::metadata::CoreMetadata;
use crate::name::NormalizedName;

/// Why an upload form is refused. Each message is one line, fit for the
/// client (twine prints the body).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    /// A required field is missing.
    #[error("the upload form has no {0:?} field")]
    Missing(&'static str),
    /// `:action` is not `file_upload`.
    #[error("unsupported :action {0:?}: only file_upload is accepted")]
    Action(String),
    /// `protocol_version` is not 1.
    #[error("unsupported protocol_version {0:?}: only 1 is accepted")]
    Protocol(String),
    /// `filetype` is not `sdist` or `bdist_wheel`.
    #[error("unsupported filetype {0:?}: only sdist and bdist_wheel are accepted")]
    Filetype(String),
    /// The filename of the `content` part is not a distribution filename.
    #[error(transparent)]
    Filename(#[from] FilenameError),
    /// A digest field is neither hex nor unpadded urlsafe base64 of the
    /// right length.
    #[error("{field} is not a {bits}-bit digest in hex or urlsafe base64: {value:?}")]
    DigestSyntax {
        /// The form field.
        field: &'static str,
        /// The digest size.
        bits: usize,
        /// What was sent.
        value: String,
    },
    /// A supplied digest does not match the bytes received.
    #[error("{field} does not match the uploaded file: the form says {supplied}, the file's is {computed}")]
    DigestMismatch {
        /// The form field.
        field: &'static str,
        /// What the form said (hex).
        supplied: String,
        /// What the bytes hash to (hex).
        computed: String,
    },
    /// `attestations` is not a JSON array of objects.
    #[error("attestations must be a JSON array of PEP 740 attestation objects")]
    Attestations,
    /// The form names another project or version than the file.
    #[error("the form says {field} {form:?} but {source_name} says {file:?}")]
    Disagrees {
        /// `name`, `version` or `filetype`.
        field: &'static str,
        /// The value in the form.
        form: String,
        /// `the filename` or `the file's metadata`.
        source_name: &'static str,
        /// The value there.
        file: String,
    },
}

/// The fields of an upload form that larder reads. Other fields (the
/// core metadata copied into the form, `gpg_signature`, ...) are accepted
/// and ignored: the metadata is read from the file itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadForm {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `filetype`.
    pub filetype: Option<PackageType>,
    /// `pyversion`.
    pub pyversion: Option<String>,
    /// `sha256_digest`, decoded.
    pub sha256: Option<Vec<u8>>,
    /// `blake2_256_digest`, decoded.
    pub blake2_256: Option<Vec<u8>>,
    /// `md5_digest`, decoded.
    pub md5: Option<Vec<u8>>,
    /// `attestations` (PEP 740), the JSON text as sent.
    pub attestations: Option<String>,
}

/// The form fields (other than the file) as `(name, value)` pairs, in the
/// order received, repeated fields repeated.
pub type FormFields = Vec<(String, String)>;

impl UploadForm {
    /// Reads the fields larder uses and checks their syntax.
    pub fn from_fields(fields: &FormFields) -> Result<Self, FormError> {
        let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        match get(":action") {
            Some("file_upload") => {}
            Some(other) => return Err(FormError::Action(other.to_owned())),
            None => return Err(FormError::Missing(":action")),
        }
        if let Some(protocol) = get("protocol_version")
            && protocol != "1"
        {
            return Err(FormError::Protocol(protocol.to_owned()));
        }
        let filetype = match get("filetype") {
            None => None,
            Some("sdist") => Some(PackageType::Sdist),
            Some("bdist_wheel") => Some(PackageType::BdistWheel),
            Some(other) => return Err(FormError::Filetype(other.to_owned())),
        };
        let digest = |field: &'static str, bytes: usize| -> Result<Option<Vec<u8>>, FormError> {
            get(field).filter(|v| !v.is_empty()).map(|v| decode_digest(field, v, bytes)).transpose()
        };
        Ok(Self {
            name: get("name").filter(|v| !v.is_empty()).ok_or(FormError::Missing("name"))?.to_owned(),
            version: get("version").filter(|v| !v.is_empty()).ok_or(FormError::Missing("version"))?.to_owned(),
            filetype,
            pyversion: get("pyversion").map(str::to_owned),
            sha256: digest("sha256_digest", 32)?,
            blake2_256: digest("blake2_256_digest", 32)?,
            md5: digest("md5_digest", 16)?,
            attestations: get("attestations").filter(|v| !v.is_empty()).map(check_attestations).transpose()?,
        })
    }

    /// Checks every supplied digest against the computed ones.
    pub fn check_digests(&self, computed: &ComputedDigests) -> Result<(), FormError> {
        check_digest("sha256_digest", self.sha256.as_deref(), &computed.sha256)?;
        check_digest("blake2_256_digest", self.blake2_256.as_deref(), &computed.blake2_256)?;
        check_digest("md5_digest", self.md5.as_deref(), &computed.md5)?;
        Ok(())
    }

    /// Checks that the form, the filename and the file's core metadata
    /// name one project, one version and one kind of distribution.
    pub fn check_against(&self, filename: &DistFilename, metadata: &CoreMetadata) -> Result<(), FormError> {
        let disagrees = |field, form: &str, source_name, file: String| FormError::Disagrees {
            field,
            form: form.to_owned(),
            source_name,
            file,
        };
        if NormalizedName::new(&self.name).ok().as_ref() != Some(filename.name()) {
            return Err(disagrees("name", &self.name, "the filename", filename.name().to_string()));
        }
        if Version::from_str(&self.version).ok().as_ref() != Some(filename.version()) {
            return Err(disagrees("version", &self.version, "the filename", filename.version().to_string()));
        }
        if let Some(filetype) = self.filetype
            && filetype != filename.package_type()
        {
            return Err(disagrees(
                "filetype",
                &filetype.to_string(),
                "the filename",
                filename.package_type().to_string(),
            ));
        }
        if NormalizedName::new(&metadata.name).ok().as_ref() != Some(filename.name()) {
            return Err(disagrees("name", &self.name, "the file's metadata", metadata.name.clone()));
        }
        if Version::from_str(&metadata.version).ok().as_ref() != Some(filename.version()) {
            return Err(disagrees("version", &self.version, "the file's metadata", metadata.version.clone()));
        }
        Ok(())
    }
}

fn check_attestations(text: &str) -> Result<String, FormError> {
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(list) if list.iter().all(serde_json::Value::is_object) => Ok(text.to_owned()),
        _ => Err(FormError::Attestations),
    }
}

/// The PEP 740 provenance object of an upload: its attestations (the JSON
/// array the upload carried) in one bundle, whose publisher is the larder
/// index and token it was uploaded with.
pub fn provenance_document(attestations: &str, index: &str, token: Option<&str>) -> Option<String> {
    let attestations: Vec<serde_json::Value> = serde_json::from_str(attestations).ok()?;
    let document = serde_json::json!({
        "version": 1,
        "attestation_bundles": [{
            "publisher": { "kind": "larder", "claims": { "index": index, "token": token } },
            "attestations": attestations,
        }],
    });
    Some(document.to_string())
}

fn check_digest(field: &'static str, supplied: Option<&[u8]>, computed: &[u8]) -> Result<(), FormError> {
    match supplied {
        Some(supplied) if supplied != computed => {
            Err(FormError::DigestMismatch { field, supplied: hex::encode(supplied), computed: hex::encode(computed) })
        }
        _ => Ok(()),
    }
}

/// Decodes a digest sent as hex or as urlsafe base64 without padding (what
/// the upload API allows), `bytes` long.
fn decode_digest(field: &'static str, value: &str, bytes: usize) -> Result<Vec<u8>, FormError> {
    let syntax = || FormError::DigestSyntax { field, bits: bytes * 8, value: value.chars().take(100).collect() };
    let decoded = if value.len() == bytes * 2 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(value).map_err(|_| syntax())?
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).map_err(|_| syntax())?
    };
    if decoded.len() != bytes {
        return Err(syntax());
    }
    Ok(decoded)
}

/// The digests of an uploaded file, computed from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputedDigests {
    /// SHA-256.
    pub sha256: [u8; 32],
    /// BLAKE2b with a 256-bit output.
    pub blake2_256: [u8; 32],
    /// MD5 (still sent by older clients).
    pub md5: [u8; 16],
}

/// Computes every digest the upload API may supply, in one pass.
#[derive(Default)]
pub struct UploadDigests {
    sha256: sha2::Sha256,
    blake2_256: blake2::Blake2b<blake2::digest::consts::U32>,
    md5: md5::Md5,
}

impl UploadDigests {
    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.blake2_256.update(bytes);
        self.md5.update(bytes);
    }

    /// The digests of everything fed.
    pub fn finish(self) -> ComputedDigests {
        ComputedDigests {
            sha256: self.sha256.finalize().into(),
            blake2_256: self.blake2_256.finalize().into(),
            md5: self.md5.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> FormFields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            (":action", "file_upload"),
            ("protocol_version", "1"),
            ("name", "Demo_Pkg"),
            ("version", "1.0"),
            ("filetype", "bdist_wheel"),
            ("pyversion", "py3"),
        ]
    }

    fn digests_of(bytes: &[u8]) -> ComputedDigests {
        let mut digests = UploadDigests::default();
        digests.update(&bytes[..2]);
        digests.update(&bytes[2..]);
        digests.finish()
    }

    #[test]
    fn computes_the_three_digests() {
        let d = digests_of(b"abc");
        assert_eq!(hex::encode(d.sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex::encode(d.md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex::encode(d.blake2_256), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    }

    #[test]
    fn accepts_hex_and_unpadded_urlsafe_base64_digests() {
        let d = digests_of(b"abc");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.blake2_256);
        let md5 = hex::encode(d.md5).to_uppercase();
        let sha = hex::encode(d.sha256);
        let mut pairs = base();
        pairs.extend([("sha256_digest", sha.as_str()), ("blake2_256_digest", b64.as_str()), ("md5_digest", &md5)]);
        let form = UploadForm::from_fields(&fields(&pairs)).unwrap();
        form.check_digests(&d).unwrap();
        let other = digests_of(b"abd");
        let err = form.check_digests(&other).unwrap_err();
        assert!(matches!(err, FormError::DigestMismatch { field: "sha256_digest", .. }), "{err}");
    }

    #[test]
    fn refuses_malformed_fields() {
        let mut pairs = base();
        pairs.push(("sha256_digest", "abcd"));
        assert!(matches!(UploadForm::from_fields(&fields(&pairs)), Err(FormError::DigestSyntax { .. })));
        let mut pairs = base();
        pairs[0] = (":action", "remove_pkg");
        assert_eq!(UploadForm::from_fields(&fields(&pairs)), Err(FormError::Action("remove_pkg".into())));
        let mut pairs = base();
        pairs[4] = ("filetype", "bdist_egg");
        assert_eq!(UploadForm::from_fields(&fields(&pairs)), Err(FormError::Filetype("bdist_egg".into())));
        let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != "name").collect();
        assert_eq!(UploadForm::from_fields(&fields(&pairs)), Err(FormError::Missing("name")));
    }

    #[test]
    fn attestations_are_a_json_array_and_become_one_bundle() {
        let mut pairs = base();
        pairs.push(("attestations", "{\"not\": \"a list\"}"));
        assert_eq!(UploadForm::from_fields(&fields(&pairs)), Err(FormError::Attestations));
        let mut pairs = base();
        pairs.push(("attestations", "[{\"version\": 1}]"));
        let form = UploadForm::from_fields(&fields(&pairs)).unwrap();
        let document = provenance_document(form.attestations.as_deref().unwrap(), "team", Some("abc")).unwrap();
        let document: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(document["attestation_bundles"][0]["attestations"][0]["version"], 1);
        assert_eq!(document["attestation_bundles"][0]["publisher"]["claims"]["index"], "team");
    }

    #[test]
    fn form_filename_and_metadata_must_agree() {
        let form = UploadForm::from_fields(&fields(&base())).unwrap();
        let wheel = DistFilename::parse("demo_pkg-1.0-py3-none-any.whl").unwrap();
        let metadata = |name: &str, version: &str| CoreMetadata {
            name: name.into(),
            version: version.into(),
            metadata_version: "2.1".into(),
            ..Default::default()
        };
        form.check_against(&wheel, &metadata("demo-pkg", "1.0.0")).unwrap();
        let other = DistFilename::parse("other-1.0-py3-none-any.whl").unwrap();
        assert!(matches!(form.check_against(&other, &metadata("other", "1.0")), Err(FormError::Disagrees { .. })));
        let err = form.check_against(&wheel, &metadata("evil", "1.0")).unwrap_err();
        assert_eq!(err.to_string(), "the form says name \"Demo_Pkg\" but the file's metadata says \"evil\"");
        assert!(form.check_against(&wheel, &metadata("demo-pkg", "2.0")).is_err());
        let sdist = DistFilename::parse("demo_pkg-1.0.tar.gz").unwrap();
        assert!(matches!(
            form.check_against(&sdist, &metadata("demo-pkg", "1.0")),
            Err(FormError::Disagrees { field: "filetype", .. })
        ));
    }
}
