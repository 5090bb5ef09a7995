//! Core metadata (`METADATA` / `PKG-INFO`): the email-header format.

/// Why a core metadata document could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// Not UTF-8 text.
    #[error("core metadata is not UTF-8 text")]
    NotUtf8,
    /// A required header is missing.
    #[error("core metadata has no {0} header")]
    Missing(&'static str),
    /// A line that is neither `Key: value` nor a continuation.
    #[error("core metadata line {0} is not a 'Key: value' header")]
    Malformed(usize),
}

/// The core metadata fields larder uses. Everything is kept verbatim; the
/// original bytes are stored beside it and served unchanged (PEP 658).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Metadata-Version`.
    pub metadata_version: String,
    /// `Name`, as written (not normalized).
    pub name: String,
    /// `Version`, as written.
    pub version: String,
    /// `Summary`.
    pub summary: Option<String>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// Every `Requires-Dist`.
    pub requires_dist: Vec<String>,
    /// Every `Provides-Extra`.
    pub provides_extra: Vec<String>,
    /// Every `Dynamic`.
    pub dynamic: Vec<String>,
}

impl CoreMetadata {
    /// Parses the header block of a core metadata document. The body (the
    /// long description after the first blank line) is ignored.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let text = std::str::from_utf8(bytes).map_err(|_| MetadataError::NotUtf8)?;
        let mut metadata = Self::default();
        let mut metadata_version = None;
        let mut name = None;
        let mut version = None;
        for (key, value) in headers(text)? {
            match key.to_ascii_lowercase().as_str() {
                "metadata-version" => metadata_version = Some(value),
                "name" => name = Some(value),
                "version" => version = Some(value),
                "summary" => metadata.summary = Some(value),
                "requires-python" => metadata.requires_python = Some(value),
                "requires-dist" => metadata.requires_dist.push(value),
                "provides-extra" => metadata.provides_extra.push(value),
                "dynamic" => metadata.dynamic.push(value),
                _ => {}
            }
        }
        metadata.metadata_version = metadata_version.ok_or(MetadataError::Missing("Metadata-Version"))?;
        metadata.name = name.ok_or(MetadataError::Missing("Name"))?;
        metadata.version = version.ok_or(MetadataError::Missing("Version"))?;
        Ok(metadata)
    }
}

/// Splits the header block into `(key, value)` pairs, joining continuation
/// lines (lines that start with whitespace) onto the header before them.
fn headers(text: &str) -> Result<Vec<(&str, String)>, MetadataError> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = out.last_mut().ok_or(MetadataError::Malformed(number + 1))?;
            value.push('\n');
            value.push_str(line.trim());
            continue;
        }
        let (key, value) = line.split_once(':').ok_or(MetadataError::Malformed(number + 1))?;
        out.push((key.trim(), value.trim().to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_resolution_needs() {
        let text = b"Metadata-Version: 2.3\nName: Foo_Bar\nVersion: 1.0\nSummary: a thing\n  that wraps\nRequires-Python: >=3.8\nRequires-Dist: idna>=2\nRequires-Dist: rich; extra == \"cli\"\nProvides-Extra: cli\n\nName: not-a-header\n";
        let m = CoreMetadata::parse(text).unwrap();
        assert_eq!(m.name, "Foo_Bar");
        assert_eq!(m.version, "1.0");
        assert_eq!(m.summary.as_deref(), Some("a thing\nthat wraps"));
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(m.requires_dist, ["idna>=2", "rich; extra == \"cli\""]);
        assert_eq!(m.provides_extra, ["cli"]);
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(CoreMetadata::parse(b"Name: x\nVersion: 1\n"), Err(MetadataError::Missing("Metadata-Version")));
        assert_eq!(
            CoreMetadata::parse(b"Metadata-Version: 2.1\nthis is not a header\n"),
            Err(MetadataError::Malformed(2))
        );
        assert_eq!(CoreMetadata::parse(b"\xff\xfe"), Err(MetadataError::NotUtf8));
    }
}
