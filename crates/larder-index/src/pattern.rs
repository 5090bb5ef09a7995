//! Project-name patterns (`django-*`, `types-*`, `numpy`): globs matched
//! against normalized names, as mirror filters and cache pins use them.

use std::str::FromStr;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::NormalizedName;

/// A glob that is not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid project pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

/// A set of project-name globs. The literal parts of each pattern are
/// normalized like names (`Foo_Bar*` matches `foo-bar-baz`).
#[derive(Clone, Debug)]
pub struct ProjectPatterns {
    set: GlobSet,
    patterns: Vec<String>,
}

impl ProjectPatterns {
    /// Builds the set; an invalid glob is an error that names it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut builder = GlobSetBuilder::new();
        let mut normalized = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let text = normalize(pattern);
            let glob = Glob::from_str(&text)
                .map_err(|e| PatternError { pattern: pattern.to_owned(), reason: e.to_string() })?;
            builder.add(glob);
            normalized.push(text);
        }
        let set =
            builder.build().map_err(|e| PatternError { pattern: normalized.join(", "), reason: e.to_string() })?;
        Ok(Self { set, patterns: normalized })
    }

    /// Whether some pattern matches the project.
    pub fn matches(&self, name: &NormalizedName) -> bool {
        self.set.is_match(name.as_str())
    }

    /// True when there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, normalized.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A pattern as it is matched: lowercase, `_` and `.` as `-`.
pub fn normalize(pattern: &str) -> String {
    pattern.trim().to_ascii_lowercase().chars().map(|c| if matches!(c, '_' | '.') { '-' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_normalized_names() {
        let patterns = ProjectPatterns::new(&["Django_*", "numpy"]).unwrap();
        let matches = |n: &str| patterns.matches(&NormalizedName::new(n).unwrap());
        assert!(matches("django-rest-framework") && matches("Django.Extensions") && matches("NumPy"));
        assert!(!matches("numpyx") && !matches("django") && !matches("flask"));
        assert_eq!(patterns.patterns(), ["django-*", "numpy"]);
        assert!(ProjectPatterns::new(&["["]).is_err());
        assert!(ProjectPatterns::new::<&str>(&[]).unwrap().is_empty());
    }
}
