//! Project names (PEP 503 normalization, core metadata name rules).

use std::fmt;

/// A project name that is valid per the core metadata spec and stored in its
/// PEP 503 normalized form: lowercase, with every run of `-`, `_` and `.`
/// replaced by a single `-`.
///
/// Every lookup and every storage key uses this type, so two spellings of
/// one project (`Foo_Bar`, `foo.bar`, `FOO-bar`) can never become two
/// projects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NormalizedName(String);

/// Why a string is not a valid project name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid project name {0:?}: a name is ASCII letters, digits, '.', '_' and '-', and starts and ends with a letter or digit"
)]
pub struct InvalidName(pub String);

impl NormalizedName {
    /// Validates `name` and normalizes it.
    pub fn new(name: &str) -> Result<Self, InvalidName> {
        if !is_valid_name(name) {
            return Err(InvalidName(name.to_owned()));
        }
        Ok(Self(normalize(name)))
    }

    /// The normalized name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds a name from a string that is already valid and normalized
    /// (such as one read back from the store). Returns `None` otherwise.
    pub fn from_normalized(name: &str) -> Option<Self> {
        (is_valid_name(name) && normalize(name) == name).then(|| Self(name.to_owned()))
    }
}

impl fmt::Display for NormalizedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NormalizedName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// True when `name` matches `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`,
/// case-insensitively.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// PEP 503 normalization of a name that is already known to be valid.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator_run {
                out.push('-');
            }
            in_separator_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_runs_of_separators_and_case() {
        for (raw, want) in [
            ("Foo_Bar", "foo-bar"),
            ("foo.bar", "foo-bar"),
            ("FOO--_.bar", "foo-bar"),
            ("zope.interface", "zope-interface"),
            ("a", "a"),
            ("A1", "a1"),
        ] {
            assert_eq!(NormalizedName::new(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in ["", "-foo", "foo-", ".hidden", "foo/bar", "..", "foo bar", "föö", "a%2Fb"] {
            assert!(NormalizedName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn from_normalized_accepts_only_normal_forms() {
        assert!(NormalizedName::from_normalized("foo-bar").is_some());
        assert!(NormalizedName::from_normalized("Foo-bar").is_none());
        assert!(NormalizedName::from_normalized("foo_bar").is_none());
    }
}
