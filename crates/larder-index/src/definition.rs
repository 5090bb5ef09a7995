//! Named indexes as data: what kind of index, its bases, who may read it,
//! and its release-age policy. Whoever stores or serves them speaks in
//! these types.

use std::collections::BTreeSet;
use std::fmt;

use crate::name::NormalizedName;
use crate::release_age::ReleaseAgePolicy;

/// The built-in hosted index that `larder add` fills and `/local/` takes
/// uploads for.
pub const LOCAL_INDEX: &str = "local";
/// The built-in mirror of the configured upstreams.
pub const UPSTREAM_INDEX_NAME: &str = "upstream";

/// First path segments that belong to larder itself and so can never name
/// an index.
const RESERVED: [&str; 8] = ["simple", "files", "pypi", "api", "health", "metrics", "static", "index"];

/// What an index serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// Its own uploads only.
    Hosted,
    /// The configured upstreams, through the cache.
    Mirror,
    /// Its own uploads over an ordered list of other indexes: a project it
    /// holds hides the same name in every base.
    Layered {
        /// Index names, in order of preference.
        bases: Vec<String>,
    },
}

impl IndexKind {
    /// `hosted`, `mirror` or `layered`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hosted => "hosted",
            Self::Mirror => "mirror",
            Self::Layered { .. } => "layered",
        }
    }

    /// Whether the index takes uploads.
    pub fn takes_uploads(&self) -> bool {
        !matches!(self, Self::Mirror)
    }

    /// The bases, in order (none unless layered).
    pub fn bases(&self) -> &[String] {
        match self {
            Self::Layered { bases } => bases,
            _ => &[],
        }
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an index definition is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefinitionError {
    /// The name is not usable as a URL segment, or is reserved.
    #[error(
        "{0:?} cannot name an index: use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit, and none of simple, files, pypi, api, health, metrics, static, index"
    )]
    Name(String),
    /// The kind is unknown.
    #[error("unknown index kind {0:?}: expected hosted, mirror or layered")]
    Kind(String),
    /// A layered index without bases, or bases on another kind.
    #[error("index {0}: a layered index needs at least one base, and only a layered index has bases")]
    Bases(String),
}

/// Checks an index name: a URL path segment of its own that never collides
/// with larder's own routes.
pub fn check_index_name(name: &str) -> Result<(), DefinitionError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !RESERVED.contains(&name);
    if valid { Ok(()) } else { Err(DefinitionError::Name(name.to_owned())) }
}

/// A named index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDefinition {
    /// Its name: `/<name>/simple/` and the upload URL `/<name>/`.
    pub name: String,
    /// What it serves.
    pub kind: IndexKind,
    /// Whether anyone may read it (otherwise a token with read scope).
    pub anonymous_read: bool,
    /// Hides upstream files younger than a minimum age.
    pub release_age: ReleaseAgePolicy,
    /// Projects whose base versions are merged with the hosted ones instead
    /// of being hidden by them (an explicit opt-out of the shadowing rule).
    pub merge_bases: BTreeSet<NormalizedName>,
}

impl IndexDefinition {
    /// A definition with the defaults: anonymous read, no release-age
    /// policy, no merged projects. Checks the name and the bases.
    pub fn new(name: &str, kind: IndexKind) -> Result<Self, DefinitionError> {
        check_index_name(name)?;
        if matches!(&kind, IndexKind::Layered { bases } if bases.is_empty()) {
            return Err(DefinitionError::Bases(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            kind,
            anonymous_read: true,
            release_age: ReleaseAgePolicy::default(),
            merge_bases: BTreeSet::new(),
        })
    }

    /// The built-in hosted index `local`.
    pub fn local() -> Self {
        Self::new(LOCAL_INDEX, IndexKind::Hosted).expect("the built-in name is valid")
    }

    /// The built-in mirror `upstream`.
    pub fn upstream() -> Self {
        Self::new(UPSTREAM_INDEX_NAME, IndexKind::Mirror).expect("the built-in name is valid")
    }

    /// Builds the kind from its name and bases (`hosted` with bases is
    /// `layered`).
    pub fn kind_from(name: &str, kind: &str, bases: Vec<String>) -> Result<IndexKind, DefinitionError> {
        match (kind, bases.is_empty()) {
            ("hosted", true) => Ok(IndexKind::Hosted),
            ("hosted" | "layered", false) => Ok(IndexKind::Layered { bases }),
            ("mirror", true) => Ok(IndexKind::Mirror),
            ("layered", true) | ("mirror", false) => Err(DefinitionError::Bases(name.to_owned())),
            (other, _) => Err(DefinitionError::Kind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_segments_and_never_larders_own_routes() {
        for good in ["team", "team-a", "ml_models", "2026"] {
            check_index_name(good).unwrap();
        }
        for bad in ["", "Team", "simple", "files", "pypi", "a/b", "..", "-x", &"a".repeat(65), "é"] {
            assert!(check_index_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_and_bases_fit_together() {
        assert_eq!(IndexDefinition::kind_from("t", "hosted", vec![]), Ok(IndexKind::Hosted));
        assert_eq!(
            IndexDefinition::kind_from("t", "hosted", vec!["upstream".into()]),
            Ok(IndexKind::Layered { bases: vec!["upstream".into()] })
        );
        assert!(IndexDefinition::kind_from("t", "mirror", vec!["x".into()]).is_err());
        assert!(IndexDefinition::kind_from("t", "layered", vec![]).is_err());
        assert!(IndexDefinition::kind_from("t", "proxy", vec![]).is_err());
        assert!(IndexKind::Hosted.takes_uploads() && !IndexKind::Mirror.takes_uploads());
    }
}
