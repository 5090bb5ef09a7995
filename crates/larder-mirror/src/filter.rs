//! What a mirror keeps: project allow/block lists (globs), the latest N
//! releases, pre-releases or not, a maximum file size, and (with target
//! environments) only the wheels those environments can install.

use std::collections::BTreeSet;
use std::str::FromStr;

use globset::{Glob, GlobSet, GlobSetBuilder};
use larder_index::{DistFilename, NormalizedName, Version};
use larder_store::FileRecord;

/// A glob that is not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid project pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

/// The mirror's filters. The default keeps everything.
#[derive(Clone)]
pub struct FileFilter {
    allow: Option<GlobSet>,
    block: Option<GlobSet>,
    /// Keep only the newest N releases of each project.
    pub keep_latest: Option<usize>,
    /// Keep pre-releases (and dev releases).
    pub prereleases: bool,
    /// Skip files larger than this many bytes (when the size is known).
    pub max_file_size: Option<u64>,
    /// Whether a wheel is wanted (e.g. compatible with a target
    /// environment); `None` keeps every wheel. Sdists are always kept.
    pub wheel_filter: Option<WheelPredicate>,
}

impl Default for FileFilter {
    fn default() -> Self {
        Self { allow: None, block: None, keep_latest: None, prereleases: true, max_file_size: None, wheel_filter: None }
    }
}

impl std::fmt::Debug for FileFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileFilter")
            .field("keep_latest", &self.keep_latest)
            .field("prereleases", &self.prereleases)
            .field("max_file_size", &self.max_file_size)
            .field("wheel_filter", &self.wheel_filter.is_some())
            .finish_non_exhaustive()
    }
}

/// Decides whether a wheel is kept.
pub type WheelPredicate = std::sync::Arc<dyn Fn(&larder_index::WheelFilename) -> bool + Send + Sync>;

impl FileFilter {
    /// A filter with allow and block lists of project-name globs
    /// (`django-*`, `types-*`), matched against normalized names. An empty
    /// allow list allows every project.
    pub fn with_projects(allow: &[String], block: &[String]) -> Result<Self, PatternError> {
        Ok(Self { allow: glob_set(allow)?, block: glob_set(block)?, ..Self::default() })
    }

    /// Whether a project is mirrored at all.
    pub fn allows_project(&self, name: &NormalizedName) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.is_match(name.as_str()))
            && !self.block.as_ref().is_some_and(|block| block.is_match(name.as_str()))
    }

    /// The files of one project to keep.
    pub fn select<'a>(&self, files: &'a [FileRecord]) -> Vec<&'a FileRecord> {
        let parsed: Vec<(&FileRecord, DistFilename)> =
            files.iter().filter_map(|f| Some((f, DistFilename::parse(&f.filename).ok()?))).collect();
        let kept_versions = self.kept_versions(parsed.iter().map(|(_, dist)| dist.version()));
        parsed
            .into_iter()
            .filter(|(file, dist)| {
                kept_versions.contains(dist.version())
                    && self.max_file_size.is_none_or(|max| file.size.is_none_or(|size| size <= max))
                    && match (dist, &self.wheel_filter) {
                        (DistFilename::Wheel(wheel), Some(wanted)) => wanted(wheel),
                        _ => true,
                    }
            })
            .map(|(file, _)| file)
            .collect()
    }

    /// The versions kept: pre-releases only when asked for, then the
    /// newest `keep_latest`.
    fn kept_versions<'a>(&self, versions: impl Iterator<Item = &'a Version>) -> BTreeSet<Version> {
        let candidates: BTreeSet<Version> =
            versions.filter(|v| self.prereleases || !(v.any_prerelease())).cloned().collect();
        match self.keep_latest {
            Some(n) => candidates.into_iter().rev().take(n).collect(),
            None => candidates,
        }
    }
}

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>, PatternError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // Patterns are matched against normalized names, so normalize the
        // literal parts the same way (`Foo_Bar*` matches `foo-bar-baz`).
        let normalized: String = pattern
            .to_ascii_lowercase()
            .chars()
            .map(|c| if matches!(c, '_' | '.') { '-' } else { c })
            .collect();
        let glob = Glob::from_str(&normalized)
            .map_err(|e| PatternError { pattern: pattern.clone(), reason: e.to_string() })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| PatternError { pattern: patterns.join(", "), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use larder_index::Sha256;

    use super::*;

    fn file(filename: &str, size: u64) -> FileRecord {
        FileRecord {
            filename: filename.to_owned(),
            version: String::new(),
            sha256: Sha256::of(filename.as_bytes()),
            size: Some(size),
            upload_time: None,
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
            yanked: None,
            gpg_sig: None,
            provenance: None,
            url: None,
        }
    }

    fn names(selected: Vec<&FileRecord>) -> Vec<&str> {
        selected.iter().map(|f| f.filename.as_str()).collect()
    }

    #[test]
    fn allow_and_block_globs_match_normalized_names() {
        let filter = FileFilter::with_projects(&["Django_*".into(), "requests".into()], &["django-debug*".into()]).unwrap();
        let allows = |n: &str| filter.allows_project(&NormalizedName::new(n).unwrap());
        assert!(allows("django-rest") && allows("Django.Cors") && allows("requests"));
        assert!(!allows("django-debug-toolbar") && !allows("flask"));
        assert!(FileFilter::with_projects(&["[".into()], &[]).is_err());
    }

    #[test]
    fn latest_releases_prereleases_and_size() {
        let files = [
            file("a-1.0.tar.gz", 10),
            file("a-2.0.tar.gz", 10),
            file("a-3.0rc1.tar.gz", 10),
            file("a-2.0-py3-none-any.whl", 5000),
        ];
        let mut filter = FileFilter { keep_latest: Some(1), prereleases: false, ..FileFilter::default() };
        assert_eq!(names(filter.select(&files)), ["a-2.0.tar.gz", "a-2.0-py3-none-any.whl"]);
        filter.prereleases = true;
        assert_eq!(names(filter.select(&files)), ["a-3.0rc1.tar.gz"]);
        let filter = FileFilter { max_file_size: Some(100), ..FileFilter::default() };
        assert_eq!(filter.select(&files).len(), 3);
    }

    #[test]
    fn the_wheel_predicate_never_drops_sdists() {
        let files = [file("a-1.0.tar.gz", 1), file("a-1.0-py3-none-win_amd64.whl", 1), file("a-1.0-py3-none-any.whl", 1)];
        let filter = FileFilter {
            wheel_filter: Some(Arc::new(|w: &larder_index::WheelFilename| w.platform_tags.iter().any(|p| p == "any"))),
            ..FileFilter::default()
        };
        assert_eq!(names(filter.select(&files)), ["a-1.0.tar.gz", "a-1.0-py3-none-any.whl"]);
    }
}
