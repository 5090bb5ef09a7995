//! pubgrub's view of the index: which versions a package may take and
//! what each one depends on in the target environment.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use larder_index::{DistFilename, NormalizedName, Version};
use pep440_rs::VersionSpecifiers;
use pep508_rs::{ExtraName, Requirement};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics, Ranges};

use crate::index::{FetchFailed, Index};
use crate::package::{Constraints, Package};
use crate::project::python_allows;
use crate::source::SourceError;

/// The version pubgrub gives the root package.
pub(crate) fn root_version() -> Version {
    Version::new([0])
}

/// One solver run over the shared [`Index`].
pub(crate) struct Provider<'a> {
    index: &'a Index,
    roots: BTreeMap<Package, Ranges<Version>>,
    /// Projects that a specifier lets have pre-releases.
    prereleases: RefCell<HashSet<NormalizedName>>,
    /// Versions pinned with `==`: these may be yanked (PEP 592).
    pins: RefCell<HashSet<(NormalizedName, Version)>>,
}

impl<'a> Provider<'a> {
    /// A run for `roots`, which must all apply in the environment.
    pub(crate) fn new(index: &'a Index, roots: &[Requirement]) -> Result<Self, larder_index::InvalidName> {
        let mut constraints = Constraints::default();
        for requirement in roots {
            constraints.add(requirement, None)?;
        }
        let mut provider = Self {
            index,
            roots: BTreeMap::new(),
            prereleases: RefCell::new(HashSet::new()),
            pins: RefCell::new(HashSet::new()),
        };
        provider.roots = provider.learn(constraints);
        Ok(provider)
    }

    /// Records what the solver must remember of new constraints, starts
    /// fetching the file lists of their projects, and returns their ranges.
    fn learn(&self, constraints: Constraints) -> BTreeMap<Package, Ranges<Version>> {
        let Constraints { ranges, prereleases, pins } = constraints;
        self.prereleases.borrow_mut().extend(prereleases);
        self.pins.borrow_mut().extend(pins);
        for package in ranges.keys() {
            if let Package::Project(name) = package {
                self.index.prefetch(name);
            }
        }
        ranges
    }

    /// The requirements of one release that apply in the environment, with
    /// `extra` active (and only those that need it), or why the release is
    /// unusable.
    fn requirements(
        &self,
        name: &NormalizedName,
        version: &Version,
        extra: Option<&ExtraName>,
    ) -> Result<Result<BTreeMap<Package, Ranges<Version>>, String>, FetchFailed> {
        let project = self.index.project(name)?;
        let Some(file) = project.representative(version) else {
            return Ok(Err("it has no usable file".to_owned()));
        };
        let metadata = match self.index.metadata(name, file) {
            Ok(metadata) => metadata,
            Err(source @ SourceError::Fetch(_)) => {
                return Err(FetchFailed::Metadata { filename: file.filename.clone(), source });
            }
            Err(error) => return Ok(Err(format!("the metadata of {} is unusable: {error}", file.filename))),
        };
        if let Some(specifiers) = metadata.requires_python.as_deref().and_then(|s| VersionSpecifiers::from_str(s).ok())
            && !python_allows(&specifiers, &self.index.env)
        {
            return Ok(Err(format!("it requires Python {specifiers}")));
        }
        if matches!(file.dist, DistFilename::Sdist(_)) && !static_requires_dist(&metadata) {
            self.index.warn(
                name,
                version,
                format!(
                    "dependencies read from {}'s PKG-INFO (Metadata-Version {}), which need not list them all",
                    file.filename, metadata.metadata_version
                ),
            );
        }
        let mut constraints = Constraints::default();
        if extra.is_some() {
            constraints.restrict(Package::Project(name.clone()), &Ranges::singleton(version.clone()));
        }
        let markers = &self.index.markers;
        for line in &metadata.requires_dist {
            let requirement = match Requirement::from_str(line) {
                Ok(requirement) => requirement,
                Err(error) => {
                    return Ok(Err(format!("its metadata has an invalid Requires-Dist {line:?}: {error}")));
                }
            };
            let wanted = match extra {
                None => requirement.evaluate_markers(markers, &[]),
                Some(extra) => {
                    requirement.evaluate_markers(markers, std::slice::from_ref(extra))
                        && !requirement.evaluate_markers(markers, &[])
                }
            };
            if wanted && let Err(error) = constraints.add(&requirement, Some(name)) {
                return Ok(Err(format!("its metadata has an invalid Requires-Dist {line:?}: {error}")));
            }
        }
        Ok(Ok(self.learn(constraints)))
    }
}

/// True when an sdist's `PKG-INFO` can be trusted for `Requires-Dist`:
/// Metadata-Version 2.2 or later (PEP 643) and the field not `Dynamic`.
fn static_requires_dist(metadata: &larder_index::CoreMetadata) -> bool {
    let at_least_2_2 = Version::from_str(&metadata.metadata_version).is_ok_and(|v| v >= Version::new([2, 2]));
    at_least_2_2 && !metadata.dynamic.iter().any(|field| field.eq_ignore_ascii_case("requires-dist"))
}

impl DependencyProvider for Provider<'_> {
    type P = Package;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = FetchFailed;
    /// Pinned packages first, then the ones that conflicted most.
    type Priority = (bool, u32);

    fn prioritize(&self, _: &Package, range: &Ranges<Version>, stats: &PackageResolutionStatistics) -> Self::Priority {
        (range.as_singleton().is_some(), stats.conflict_count())
    }

    /// The highest candidate in `range`: final releases before
    /// pre-releases unless a specifier named a pre-release of the project.
    fn choose_version(&self, package: &Package, range: &Ranges<Version>) -> Result<Option<Version>, FetchFailed> {
        let Some(name) = package.project() else {
            return Ok(Some(root_version()));
        };
        let project = self.index.project(name)?;
        let pins = self.pins.borrow();
        let candidates: Vec<&Version> =
            project.candidates(range, |version| pins.contains(&(name.clone(), version.clone()))).collect();
        let newest = candidates.first().copied();
        let best = if self.prereleases.borrow().contains(name) {
            newest
        } else {
            candidates.into_iter().find(|version| !version.any_prerelease()).or(newest)
        };
        Ok(best.cloned())
    }

    fn get_dependencies(
        &self,
        package: &Package,
        version: &Version,
    ) -> Result<Dependencies<Package, Ranges<Version>, String>, FetchFailed> {
        let ranges = match package {
            Package::Root => Ok(self.roots.clone()),
            Package::Project(name) => self.requirements(name, version, None)?,
            Package::Extra(name, extra) => self.requirements(name, version, Some(extra))?,
        };
        Ok(match ranges {
            Ok(ranges) => Dependencies::Available(ranges.into_iter().collect()),
            Err(reason) => Dependencies::Unavailable(reason),
        })
    }
}
