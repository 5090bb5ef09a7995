//! What pubgrub solves for: projects, plus one virtual package per
//! `project[extra]` (it depends on the project at the same version and on
//! the extra's requirements), and the root that stands for the requested
//! requirements.

use std::collections::BTreeMap;
use std::fmt;

use larder_index::{InvalidName, NormalizedName, Version};
use pep440_rs::Operator;
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use pubgrub::Ranges;

/// A package in pubgrub's sense.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Package {
    /// The requirements being resolved.
    Root,
    /// A project.
    Project(NormalizedName),
    /// A project with one extra.
    Extra(NormalizedName, ExtraName),
}

impl Package {
    /// The project this package belongs to (none for the root).
    pub(crate) fn project(&self) -> Option<&NormalizedName> {
        match self {
            Self::Root => None,
            Self::Project(name) | Self::Extra(name, _) => Some(name),
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("the requirements"),
            Self::Project(name) => write!(f, "{name}"),
            Self::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

/// The version ranges a set of requirements asks for, merged per package,
/// with what the solver needs to know besides: which projects a specifier
/// lets have pre-releases, and which versions are pinned with `==`.
#[derive(Debug, Default)]
pub(crate) struct Constraints {
    /// Package → allowed versions.
    pub(crate) ranges: BTreeMap<Package, Ranges<Version>>,
    /// Projects whose specifiers name a pre-release.
    pub(crate) prereleases: Vec<NormalizedName>,
    /// Versions asked for with `==V` or `===V`.
    pub(crate) pins: Vec<(NormalizedName, Version)>,
}

impl Constraints {
    /// Adds a requirement: its project and one package per extra, all with
    /// its version range (a URL requirement allows any version: larder
    /// mirrors from the index). A requirement on `itself` (the package
    /// whose dependencies these are) adds only its extras.
    pub(crate) fn add(
        &mut self,
        requirement: &Requirement,
        itself: Option<&NormalizedName>,
    ) -> Result<(), InvalidName> {
        let name = NormalizedName::new(requirement.name.as_ref())?;
        let range = match &requirement.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
                for specifier in specifiers.iter() {
                    if specifier.version().any_prerelease() {
                        self.prereleases.push(name.clone());
                    }
                    if matches!(specifier.operator(), Operator::Equal | Operator::ExactEqual) {
                        self.pins.push((name.clone(), specifier.version().clone()));
                    }
                }
                Ranges::from(specifiers.clone())
            }
            Some(VersionOrUrl::Url(_)) | None => Ranges::full(),
        };
        let base = (itself != Some(&name)).then(|| Package::Project(name.clone()));
        let extras = requirement.extras.iter().map(|extra| Package::Extra(name.clone(), extra.clone()));
        for package in base.into_iter().chain(extras) {
            self.restrict(package, &range);
        }
        Ok(())
    }

    /// Narrows a package's range (or sets it, the first time).
    pub(crate) fn restrict(&mut self, package: Package, range: &Ranges<Version>) {
        self.ranges
            .entry(package)
            .and_modify(|current| *current = current.intersection(range))
            .or_insert_with(|| range.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn name(n: &str) -> NormalizedName {
        NormalizedName::new(n).unwrap()
    }

    #[test]
    fn merges_ranges_and_records_pins_and_prereleases() {
        let mut constraints = Constraints::default();
        for requirement in
            ["Foo[cli]>=1", "foo<2", "bar==1.0", "baz>=2.0b1", "me[x]", "other @ https://example.invalid/o.whl"]
        {
            constraints.add(&Requirement::from_str(requirement).unwrap(), Some(&name("me"))).unwrap();
        }
        let foo = &constraints.ranges[&Package::Project(name("foo"))];
        assert!(foo.contains(&"1.5".parse().unwrap()) && !foo.contains(&"2.0".parse().unwrap()));
        let extra = &constraints.ranges[&Package::Extra(name("foo"), ExtraName::from_str("cli").unwrap())];
        assert!(extra.contains(&"2.5".parse().unwrap()));
        assert!(!constraints.ranges.contains_key(&Package::Project(name("me"))));
        assert!(constraints.ranges.contains_key(&Package::Extra(name("me"), ExtraName::from_str("x").unwrap())));
        assert_eq!(constraints.ranges[&Package::Project(name("other"))], Ranges::full());
        assert_eq!(constraints.pins, [(name("bar"), "1.0".parse().unwrap())]);
        assert_eq!(constraints.prereleases, [name("baz")]);
    }
}
