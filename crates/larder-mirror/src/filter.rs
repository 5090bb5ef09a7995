//! What a mirror keeps: project allow/block lists (globs), the latest N
//! releases, pre-releases or not, a maximum file size, and (with target
//! environments) only the wheels those environments can install.

use std::collections::BTreeSet;

pub use larder_index::PatternError;
use larder_index::tags::TargetEnvironment;
use larder_index::{DistFilename, NormalizedName, ProjectPatterns, Version};
use larder_store::FileRecord;

/// The mirror's filters. The default keeps everything.
#[derive(Clone, Debug)]
pub struct FileFilter {
    allow: Option<ProjectPatterns>,
    block: Option<ProjectPatterns>,
    /// The patterns the glob sets were built from (for the fingerprint).
    patterns: (Vec<String>, Vec<String>),
    /// Keep only the newest N releases of each project.
    pub keep_latest: Option<usize>,
    /// Keep pre-releases (and dev releases).
    pub prereleases: bool,
    /// Skip files larger than this many bytes (when the size is known).
    pub max_file_size: Option<u64>,
    /// Keep only wheels that one of these environments can install
    /// (empty: every wheel). Sdists are always kept.
    pub targets: Vec<TargetEnvironment>,
}

impl Default for FileFilter {
    fn default() -> Self {
        Self {
            allow: None,
            block: None,
            patterns: (Vec::new(), Vec::new()),
            keep_latest: None,
            prereleases: true,
            max_file_size: None,
            targets: Vec::new(),
        }
    }
}

impl FileFilter {
    /// A filter with allow and block lists of project-name globs
    /// (`django-*`, `types-*`), matched against normalized names. An empty
    /// allow list allows every project.
    pub fn with_projects(allow: &[String], block: &[String]) -> Result<Self, PatternError> {
        Ok(Self {
            allow: glob_set(allow)?,
            block: glob_set(block)?,
            patterns: (allow.to_vec(), block.to_vec()),
            ..Self::default()
        })
    }

    /// A description of everything the filter keeps, equal for equal
    /// filters: a mirror that ran with another one must look at every
    /// project again, not only the ones that changed upstream.
    pub fn fingerprint(&self) -> String {
        let targets: Vec<String> = self.targets.iter().map(ToString::to_string).collect();
        format!(
            "allow={:?} block={:?} keep_latest={:?} prereleases={} max_file_size={:?} targets={targets:?}",
            self.patterns.0, self.patterns.1, self.keep_latest, self.prereleases, self.max_file_size
        )
    }

    /// Whether a project is mirrored at all.
    pub fn allows_project(&self, name: &NormalizedName) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.matches(name))
            && !self.block.as_ref().is_some_and(|block| block.matches(name))
    }

    /// The files of one project to keep. A file whose name gives no
    /// version or tags (an egg, an installer, a version that is not PEP
    /// 440) is kept unless a rule needs them (latest N, no pre-releases,
    /// target environments).
    pub fn select<'a>(&self, files: &'a [FileRecord]) -> Vec<&'a FileRecord> {
        let parsed: Vec<(&FileRecord, Option<DistFilename>)> =
            files.iter().map(|f| (f, DistFilename::parse(&f.filename).ok())).collect();
        let kept_versions =
            self.kept_versions(parsed.iter().filter_map(|(_, dist)| dist.as_ref()).map(|d| d.version()));
        let keeps_unreadable = self.keep_latest.is_none() && self.prereleases && self.targets.is_empty();
        parsed
            .into_iter()
            .filter(|(file, dist)| {
                self.max_file_size.is_none_or(|max| file.size.is_none_or(|size| size <= max))
                    && match dist {
                        None => keeps_unreadable,
                        Some(dist) => kept_versions.contains(dist.version()) && self.fits_targets(dist),
                    }
            })
            .map(|(file, _)| file)
            .collect()
    }

    /// Whether a distribution is one the target environments can use:
    /// any sdist, and wheels one of them can install.
    fn fits_targets(&self, dist: &DistFilename) -> bool {
        match dist {
            DistFilename::Wheel(wheel) => {
                self.targets.is_empty() || self.targets.iter().any(|t| t.is_compatible(wheel))
            }
            DistFilename::Sdist(_) => true,
        }
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

fn glob_set(patterns: &[String]) -> Result<Option<ProjectPatterns>, PatternError> {
    if patterns.is_empty() { Ok(None) } else { ProjectPatterns::new(patterns).map(Some) }
}

#[cfg(test)]
mod tests {
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
        let filter =
            FileFilter::with_projects(&["Django_*".into(), "requests".into()], &["django-debug*".into()]).unwrap();
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
    fn files_with_unreadable_names_are_kept_unless_a_rule_needs_their_version() {
        let files = [file("a-1.0-py2.7.egg", 1), file("a-1.0.win32.exe", 1), file("a-1.0.tar.gz", 1)];
        assert_eq!(FileFilter::default().select(&files).len(), 3, "the default keeps everything");
        let filter = FileFilter { max_file_size: Some(100), ..FileFilter::default() };
        assert_eq!(filter.select(&files).len(), 3);
        let filter = FileFilter { keep_latest: Some(1), ..FileFilter::default() };
        assert_eq!(names(filter.select(&files)), ["a-1.0.tar.gz"]);
    }

    #[test]
    fn target_environments_keep_their_wheels_and_every_sdist() {
        let files = [
            file("a-1.0.tar.gz", 1),
            file("a-1.0-cp312-cp312-win_amd64.whl", 1),
            file("a-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", 1),
            file("a-1.0-py3-none-any.whl", 1),
        ];
        let linux = TargetEnvironment::parse("3.12", "manylinux_2_28_x86_64").unwrap();
        let filter = FileFilter { targets: vec![linux], ..FileFilter::default() };
        assert_eq!(
            names(filter.select(&files)),
            ["a-1.0.tar.gz", "a-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "a-1.0-py3-none-any.whl"]
        );
    }

    #[test]
    fn the_fingerprint_changes_with_any_setting() {
        let base = FileFilter::with_projects(&["a*".into()], &[]).unwrap();
        let mut wider = base.clone();
        wider.keep_latest = Some(3);
        let mut other_targets = base.clone();
        other_targets.targets = vec![TargetEnvironment::parse("3.12", "win_amd64").unwrap()];
        let other_globs = FileFilter::with_projects(&["b*".into()], &[]).unwrap();
        let prints = [&base, &wider, &other_targets, &other_globs].map(FileFilter::fingerprint);
        assert_eq!(prints.iter().collect::<std::collections::HashSet<_>>().len(), 4);
        assert_eq!(base.fingerprint(), base.clone().fingerprint());
    }
}
