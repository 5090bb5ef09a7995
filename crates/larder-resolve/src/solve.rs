//! The whole resolution for one environment, on the solver thread: the
//! requirements (together, else each alone), then the build requirements
//! of every sdist it mirrors, until nothing new turns up.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;

use larder_index::{DistFilename, NormalizedName, Version};
use pep508_rs::{Requirement, VersionOrUrl};
use pubgrub::PubGrubError;

use crate::index::Index;
use crate::package::Package;
use crate::provider::{Provider, root_version};
use crate::report::explain;
use crate::{Failure, Resolution, ResolvedPackage, Warning};

/// One release chosen by a solver run.
type Chosen = (NormalizedName, Version);

/// Resolves `roots` and the build requirements of every sdist the result
/// holds, recursively.
pub(crate) fn solve(roots: &[Requirement], index: &Index) -> Resolution {
    let mut failures = Vec::new();
    let mut chosen: BTreeMap<Chosen, Vec<String>> = BTreeMap::new();
    let mut resolved_sets: HashSet<Vec<String>> = HashSet::new();
    let mut new = resolve_roots(index, roots, None, &mut failures);
    while !new.is_empty() {
        let mut sdists = Vec::new();
        for (name, version) in new.drain(..) {
            if chosen.contains_key(&(name.clone(), version.clone())) {
                continue;
            }
            let Ok(project) = index.project(&name) else { continue };
            let files = project.mirror_files(&version);
            if let [file] = files.as_slice()
                && matches!(file.dist, DistFilename::Sdist(_))
            {
                index.prefetch_build_requires(&name, file);
                sdists.push((name.clone(), (*file).clone()));
            }
            chosen.insert((name, version), files.iter().map(|file| file.filename.clone()).collect());
        }
        for (name, sdist) in sdists {
            let context = format!("to build {}", sdist.filename);
            match index.build_requires(&name, &sdist) {
                Ok(requirements) => {
                    let mut key: Vec<String> = requirements.iter().map(ToString::to_string).collect();
                    key.sort();
                    if resolved_sets.insert(key) {
                        new.extend(resolve_roots(index, &requirements, Some(&context), &mut failures));
                    }
                }
                Err(error) => failures.push(Failure {
                    requirement: format!("build requirements of {}", sdist.filename),
                    reason: chain(&error),
                }),
            }
        }
    }
    let warnings = chosen
        .keys()
        .filter_map(|(name, version)| {
            let message = index.warning(name, version)?;
            Some(Warning { name: name.clone(), version: version.clone(), message })
        })
        .collect();
    let packages =
        chosen.into_iter().map(|((name, version), files)| ResolvedPackage { name, version, files }).collect();
    Resolution { packages, failures, warnings }
}

/// Resolves a set of requirements: together; when that fails, each one
/// alone (reporting the ones that fail alone), then the ones that resolve
/// alone together again; when even those conflict, the conflict is
/// reported and each is kept as resolved alone, so that everything that
/// can be installed is mirrored. Requirements whose markers exclude the
/// environment are skipped. Returns the releases chosen.
fn resolve_roots(
    index: &Index,
    roots: &[Requirement],
    context: Option<&str>,
    failures: &mut Vec<Failure>,
) -> Vec<Chosen> {
    let label = |requirement: &Requirement| match context {
        Some(context) => format!("{requirement} ({context})"),
        None => requirement.to_string(),
    };
    let mut active = Vec::new();
    for requirement in roots.iter().filter(|r| r.evaluate_markers(&index.markers, &[])) {
        if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
            failures.push(Failure {
                requirement: label(requirement),
                reason: "a direct URL requirement: larder mirrors from the index only".to_owned(),
            });
        } else {
            active.push(requirement.clone());
        }
    }
    let joint_reason = match solve_set(index, &active) {
        Ok(chosen) => return chosen,
        Err(reason) => reason,
    };
    if let [requirement] = active.as_slice() {
        failures.push(Failure { requirement: label(requirement), reason: joint_reason });
        return Vec::new();
    }
    let mut alone = Vec::new();
    let mut chosen = Vec::new();
    for requirement in &active {
        match solve_set(index, std::slice::from_ref(requirement)) {
            Ok(solution) => {
                alone.push(requirement.clone());
                chosen.extend(solution);
            }
            Err(reason) => failures.push(Failure { requirement: label(requirement), reason }),
        }
    }
    if alone.len() < 2 {
        return chosen;
    }
    let together = if alone.len() == active.len() { Err(joint_reason) } else { solve_set(index, &alone) };
    match together {
        Ok(solution) => solution,
        Err(reason) => {
            failures.push(Failure {
                requirement: alone.iter().map(label).collect::<Vec<_>>().join(", "),
                reason: format!("{reason}\nnote: each of these is mirrored as resolved on its own"),
            });
            chosen
        }
    }
}

/// One solver run: the releases chosen, or the readable reason there are
/// none.
fn solve_set(index: &Index, roots: &[Requirement]) -> Result<Vec<Chosen>, String> {
    let provider = Provider::new(index, roots).map_err(|error| error.to_string())?;
    match pubgrub::resolve(&provider, Package::Root, root_version()) {
        Ok(selected) => Ok(selected
            .iter()
            .filter_map(|(package, version)| match package {
                Package::Project(name) => Some((name.clone(), version.clone())),
                Package::Root | Package::Extra(..) => None,
            })
            .collect()),
        Err(PubGrubError::NoSolution(tree)) => Err(explain(&tree, index)),
        Err(
            PubGrubError::ErrorChoosingVersion { source, .. }
            | PubGrubError::ErrorRetrievingDependencies { source, .. }
            | PubGrubError::ErrorInShouldCancel(source),
        ) => Err(chain(&source)),
    }
}

/// An error and its sources, `: `-separated.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text.push_str(": ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    text
}
