//! One project's releases as a target environment sees them: which files
//! each version offers it, and why the others offer nothing.

use std::collections::BTreeMap;
use std::str::FromStr;

use larder_index::tags::TargetEnvironment;
use larder_index::{DistFilename, NormalizedName, SdistFormat, Version};
use pep440_rs::{VersionSpecifiers, release_specifiers_to_ranges};
use pubgrub::Ranges;

use crate::source::SourceFile;

/// The files of one version that the environment can use.
#[derive(Debug, Default)]
struct Release {
    /// Usable files (compatible wheels and sdists), not yanked.
    files: Vec<usize>,
    /// Usable files that are yanked: a candidate only when pinned.
    yanked: Vec<usize>,
}

/// A project's versions for one environment.
#[derive(Debug)]
pub(crate) struct Project {
    files: Vec<SourceFile>,
    releases: BTreeMap<Version, Release>,
    /// Why each version with no usable file offers nothing.
    unusable: BTreeMap<Version, String>,
}

impl Project {
    /// Sorts a project's files by version and keeps, for each version, the
    /// ones `env` can use: wheels compatible with it and sdists, whose
    /// `requires-python` some `X.Y.*` of the environment's Python satisfies
    /// (a mirror rather holds a file too many than one too few).
    pub(crate) fn new(name: &NormalizedName, files: &[SourceFile], env: &TargetEnvironment) -> Self {
        let mut project = Self { files: Vec::new(), releases: BTreeMap::new(), unusable: BTreeMap::new() };
        let mut requires_python = BTreeMap::new();
        for file in files.iter().filter(|file| file.dist.name() == name) {
            let version = file.dist.version().clone();
            if let Some(specifiers) = file.requires_python.as_deref().and_then(|s| VersionSpecifiers::from_str(s).ok())
                && !python_allows(&specifiers, env)
            {
                requires_python.insert(version, specifiers);
                continue;
            }
            let usable = match &file.dist {
                DistFilename::Wheel(wheel) => env.is_compatible(wheel),
                DistFilename::Sdist(_) => true,
            };
            if !usable {
                continue;
            }
            let release = project.releases.entry(version).or_default();
            let list = if file.yanked { &mut release.yanked } else { &mut release.files };
            list.push(project.files.len());
            project.files.push(file.clone());
        }
        for file in files.iter().filter(|file| file.dist.name() == name) {
            let version = file.dist.version();
            if project.releases.get(version).is_some_and(|release| !release.files.is_empty()) {
                continue;
            }
            let reason = if project.releases.contains_key(version) {
                "yanked".to_owned()
            } else if let Some(specifiers) = requires_python.get(version) {
                format!("requires Python {specifiers}")
            } else {
                format!("no wheel for {env} and no sdist")
            };
            project.unusable.insert(version.clone(), reason);
        }
        project
    }

    /// True when the index lists no file of this project at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.releases.is_empty() && self.unusable.is_empty()
    }

    /// The versions to try, best first: the usable versions in `range`,
    /// yanked ones only when `pinned` says they were asked for with `==`.
    pub(crate) fn candidates<'a>(
        &'a self,
        range: &'a Ranges<Version>,
        pinned: impl Fn(&Version) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Version> + 'a {
        self.releases
            .iter()
            .rev()
            .filter(move |(version, release)| {
                range.contains(*version) && (!release.files.is_empty() || pinned(version))
            })
            .map(|(version, _)| version)
    }

    /// The files of a chosen version to mirror: every compatible wheel, or
    /// the sdist when there is none (a `.tar.gz` before the legacy
    /// formats). Yanked files only when the version has nothing else.
    pub(crate) fn mirror_files(&self, version: &Version) -> Vec<&SourceFile> {
        let Some(release) = self.releases.get(version) else {
            return Vec::new();
        };
        let indices = if release.files.is_empty() { &release.yanked } else { &release.files };
        let files: Vec<&SourceFile> = indices.iter().map(|&i| &self.files[i]).collect();
        let wheels: Vec<&SourceFile> =
            files.iter().copied().filter(|file| matches!(file.dist, DistFilename::Wheel(_))).collect();
        if !wheels.is_empty() {
            return wheels;
        }
        files
            .into_iter()
            .min_by_key(|file| !matches!(&file.dist, DistFilename::Sdist(sdist) if sdist.format == SdistFormat::TarGz))
            .into_iter()
            .collect()
    }

    /// The file whose metadata stands for the version: the first
    /// compatible wheel, else the sdist.
    pub(crate) fn representative(&self, version: &Version) -> Option<&SourceFile> {
        self.mirror_files(version).into_iter().next()
    }

    /// Why the versions in `range` that are not candidates offer nothing,
    /// newest first.
    pub(crate) fn unusable_in<'a>(
        &'a self,
        range: &'a Ranges<Version>,
    ) -> impl Iterator<Item = (&'a Version, &'a str)> {
        self.unusable.iter().rev().filter(|(version, _)| range.contains(*version)).map(|(v, r)| (v, r.as_str()))
    }
}

/// True when some `X.Y.*` release of the environment's Python satisfies
/// a `requires-python` specifier.
pub(crate) fn python_allows(specifiers: &VersionSpecifiers, env: &TargetEnvironment) -> bool {
    let (major, minor) = (u64::from(env.python_version.0), u64::from(env.python_version.1));
    let python = Ranges::from_range_bounds(Version::new([major, minor])..Version::new([major, minor + 1]));
    !release_specifiers_to_ranges(specifiers.clone()).is_disjoint(&python)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, requires_python: Option<&str>, yanked: bool) -> SourceFile {
        SourceFile::new(name, requires_python.map(str::to_owned), yanked).unwrap()
    }

    fn version(v: &str) -> Version {
        v.parse().unwrap()
    }

    fn project(files: &[SourceFile]) -> Project {
        let env = TargetEnvironment::parse("3.10", "win_amd64").unwrap();
        Project::new(&NormalizedName::new("demo").unwrap(), files, &env)
    }

    #[test]
    fn keeps_the_usable_files_and_says_why_the_rest_is_not() {
        let p = project(&[
            file("demo-3.0-py3-none-any.whl", Some(">=3.11"), false),
            file("demo-2.0-cp310-cp310-manylinux_2_17_x86_64.whl", None, false),
            file("demo-1.5-py3-none-any.whl", None, true),
            file("demo-1.0-cp310-cp310-win_amd64.whl", None, false),
            file("demo-1.0-cp310-cp310-manylinux_2_17_x86_64.whl", None, false),
            file("demo-1.0.tar.gz", None, false),
            file("other-9.0-py3-none-any.whl", None, false),
        ]);
        let all = Ranges::full();
        assert_eq!(p.candidates(&all, |_| false).collect::<Vec<_>>(), [&version("1.0")]);
        assert_eq!(
            p.candidates(&all, |v| *v == version("1.5")).collect::<Vec<_>>(),
            [&version("1.5"), &version("1.0")]
        );
        let names = |files: Vec<&SourceFile>| files.iter().map(|f| f.filename.clone()).collect::<Vec<_>>();
        assert_eq!(names(p.mirror_files(&version("1.0"))), ["demo-1.0-cp310-cp310-win_amd64.whl"]);
        assert_eq!(names(p.mirror_files(&version("1.5"))), ["demo-1.5-py3-none-any.whl"]);
        assert_eq!(
            p.unusable_in(&all).collect::<Vec<_>>(),
            [
                (&version("3.0"), "requires Python >=3.11"),
                (&version("2.0"), "no wheel for cp310-win_amd64 and no sdist"),
                (&version("1.5"), "yanked"),
            ]
        );
    }

    #[test]
    fn an_sdist_stands_in_when_no_wheel_fits() {
        let p = project(&[
            file("demo-1.0.zip", None, false),
            file("demo-1.0.tar.gz", None, false),
            file("demo-1.0-cp310-cp310-macosx_11_0_arm64.whl", None, false),
        ]);
        assert_eq!(p.representative(&version("1.0")).unwrap().filename, "demo-1.0.tar.gz");
        assert_eq!(p.mirror_files(&version("1.0")).len(), 1);
    }

    #[test]
    fn requires_python_is_met_by_any_patch_release() {
        let p = project(&[
            file("demo-1.0-py3-none-any.whl", Some(">=3.10.4"), false),
            file("demo-2.0-py3-none-any.whl", Some("<3.10"), false),
            file("demo-3.0-py3-none-any.whl", Some("not a specifier"), false),
        ]);
        assert_eq!(p.candidates(&Ranges::full(), |_| false).collect::<Vec<_>>(), [&version("3.0"), &version("1.0")]);
        assert!(!p.is_empty());
        assert!(project(&[]).is_empty());
    }
}
