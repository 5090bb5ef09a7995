//! pubgrub's explanation of a failed resolution, in requirement syntax
//! (`foo>=2,<3`, `you require ...`), followed by notes that say why the
//! versions the explanation calls unusable are unusable.

use std::ops::Bound;

use larder_index::Version;
use pubgrub::{DefaultStringReporter, DerivationTree, Derived, External, Map, Ranges, ReportFormatter, Reporter, Term};

use crate::index::Index;
use crate::package::Package;

/// The derivation tree of a failed run.
pub(crate) type Tree = DerivationTree<Package, Ranges<Version>, String>;

/// How many skipped versions a note names before it only counts them.
const NOTE_VERSIONS: usize = 5;

/// The readable explanation of a failed run.
pub(crate) fn explain(tree: &Tree, index: &Index) -> String {
    let mut text = DefaultStringReporter::report_with_formatter(tree, &Formatter);
    let mut notes = Vec::new();
    collect_notes(tree, index, &mut notes);
    for note in notes {
        text.push('\n');
        text.push_str(&note);
    }
    text
}

/// For every "no usable version" in the tree: the project is not on the
/// index, or which versions in the range were skipped and why.
fn collect_notes(tree: &Tree, index: &Index, notes: &mut Vec<String>) {
    let mut add = |note: String| {
        if !notes.contains(&note) {
            notes.push(note);
        }
    };
    match tree {
        DerivationTree::External(External::NoVersions(package, range)) => {
            let Some(project) = package.project().and_then(|name| index.known_project(name).map(|p| (name, p))) else {
                return;
            };
            let (name, project) = project;
            if project.is_empty() {
                add(format!("note: {name} is not on the index"));
                return;
            }
            let mut by_reason: Vec<(&str, Vec<&Version>)> = Vec::new();
            for (version, reason) in project.unusable_in(range) {
                match by_reason.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, versions)) => versions.push(version),
                    None => by_reason.push((reason, vec![version])),
                }
            }
            for (reason, versions) in by_reason {
                let mut listed: Vec<String> = versions.iter().take(NOTE_VERSIONS).map(ToString::to_string).collect();
                if versions.len() > NOTE_VERSIONS {
                    listed.push(format!("and {} more", versions.len() - NOTE_VERSIONS));
                }
                add(format!("note: {name} {} skipped: {reason}", listed.join(", ")));
            }
        }
        DerivationTree::External(_) => {}
        DerivationTree::Derived(derived) => {
            collect_notes(&derived.cause1, index, notes);
            collect_notes(&derived.cause2, index, notes);
        }
    }
}

/// A package with a version range, as a requirement would say it.
fn term(package: &Package, range: &Ranges<Version>) -> String {
    if *package == Package::Root {
        return package.to_string();
    }
    if range.is_empty() {
        return format!("{package} (no version)");
    }
    if let Some(version) = range.complement().as_singleton() {
        return format!("{package}!={version}");
    }
    let segments: Vec<String> = range
        .iter()
        .map(|segment| match segment {
            (Bound::Included(low), Bound::Included(high)) if low == high => format!("=={low}"),
            (low, high) => {
                let low = match low {
                    Bound::Included(v) => format!(">={}", shown(v)),
                    Bound::Excluded(v) => format!(">{}", shown(v)),
                    Bound::Unbounded => String::new(),
                };
                let high = match high {
                    Bound::Included(v) => format!("<={}", shown(v)),
                    Bound::Excluded(v) => format!("<{}", shown(v)),
                    Bound::Unbounded => String::new(),
                };
                [low, high].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
            }
        })
        .collect();
    format!("{package}{}", segments.join(" or "))
}

/// A range bound as the specifier that produced it was written: `~=1.4`
/// and `==1.4.*` give bounds at `X.dev0`, shown as `X`.
fn shown(version: &Version) -> Version {
    if version.dev() == Some(0) && version.pre().is_none() && version.post().is_none() {
        version.clone().with_dev(None)
    } else {
        version.clone()
    }
}

/// Writes pubgrub's explanation steps with [`term`].
struct Formatter;

impl Formatter {
    fn terms(&self, terms: &Map<Package, Term<Ranges<Version>>>) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] | [(Package::Root, Term::Positive(_))] => "the requirements cannot be resolved".to_owned(),
            [(package, Term::Positive(range))] => format!("{} cannot be used", term(package, range)),
            [(package, Term::Negative(range))] => format!("{} is required", term(package, range)),
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => {
                self.external(&External::FromDependencyOf((*p1).clone(), r1.clone(), (*p2).clone(), r2.clone()))
            }
            terms => {
                let listed: Vec<String> = terms
                    .iter()
                    .map(|(package, t)| match t {
                        Term::Positive(range) => term(package, range),
                        Term::Negative(range) => format!("not {}", term(package, range)),
                    })
                    .collect();
                format!("{} are incompatible", listed.join(" and "))
            }
        }
    }

    fn external(&self, external: &External<Package, Ranges<Version>, String>) -> String {
        match external {
            External::NotRoot(..) => "the requirements are being resolved".to_owned(),
            External::NoVersions(package, range) => match range.complement().as_singleton() {
                Some(version) => format!("no version of {package} other than {version} is usable"),
                None => format!("there is no usable version of {}", term(package, range)),
            },
            External::Custom(package, range, reason) => format!("{} is unusable: {reason}", term(package, range)),
            External::FromDependencyOf(Package::Root, _, dependency, range) => {
                format!("you require {}", term(dependency, range))
            }
            External::FromDependencyOf(package, package_range, dependency, range) => {
                format!("{} depends on {}", term(package, package_range), term(dependency, range))
            }
        }
    }
}

impl ReportFormatter<Package, Ranges<Version>, String> for Formatter {
    type Output = String;

    fn format_external(&self, external: &External<Package, Ranges<Version>, String>) -> String {
        self.external(external)
    }

    fn format_terms(&self, terms: &Map<Package, Term<Ranges<Version>>>) -> String {
        self.terms(terms)
    }

    fn explain_both_external(
        &self,
        external1: &External<Package, Ranges<Version>, String>,
        external2: &External<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!("Because {} and {}, {}.", self.external(external1), self.external(external2), self.terms(current_terms))
    }

    fn explain_both_ref(
        &self,
        ref_id1: usize,
        derived1: &Derived<Package, Ranges<Version>, String>,
        ref_id2: usize,
        derived2: &Derived<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id1}) and {} ({ref_id2}), {}.",
            self.terms(&derived1.terms),
            self.terms(&derived2.terms),
            self.terms(current_terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        ref_id: usize,
        derived: &Derived<Package, Ranges<Version>, String>,
        external: &External<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id}) and {}, {}.",
            self.terms(&derived.terms),
            self.external(external),
            self.terms(current_terms)
        )
    }

    fn and_explain_external(
        &self,
        external: &External<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!("And because {}, {}.", self.external(external), self.terms(current_terms))
    }

    fn and_explain_ref(
        &self,
        ref_id: usize,
        derived: &Derived<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!("And because {} ({ref_id}), {}.", self.terms(&derived.terms), self.terms(current_terms))
    }

    fn and_explain_prior_and_external(
        &self,
        prior_external: &External<Package, Ranges<Version>, String>,
        external: &External<Package, Ranges<Version>, String>,
        current_terms: &Map<Package, Term<Ranges<Version>>>,
    ) -> String {
        format!(
            "And because {} and {}, {}.",
            self.external(prior_external),
            self.external(external),
            self.terms(current_terms)
        )
    }
}

#[cfg(test)]
mod tests {
    use larder_index::NormalizedName;
    use pep440_rs::VersionSpecifiers;

    use super::*;

    fn range(specifiers: &str) -> Ranges<Version> {
        Ranges::from(specifiers.parse::<VersionSpecifiers>().unwrap())
    }

    #[test]
    fn terms_read_like_requirements() {
        let foo = Package::Project(NormalizedName::new("foo").unwrap());
        for (specifiers, want) in [
            (">=1.0", "foo>=1.0"),
            ("<2", "foo<2"),
            ("~=1.4", "foo>=1.4,<2"),
            ("==1.4.*", "foo>=1.4,<1.5"),
            ("==1.0", "foo==1.0"),
            ("!=1.5", "foo!=1.5"),
            (">1,<2", "foo>1,<2"),
        ] {
            assert_eq!(term(&foo, &range(specifiers)), want, "{specifiers}");
        }
        assert_eq!(term(&foo, &Ranges::full()), "foo");
        assert_eq!(term(&foo, &range(">=2,<1")), "foo (no version)");
        assert_eq!(term(&Package::Root, &Ranges::singleton(Version::new([0]))), "the requirements");
    }
}
