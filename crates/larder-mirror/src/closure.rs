//! `larder mirror --requirements`: the dependency closure of requirements,
//! resolved for every target environment, then mirrored.

use std::collections::{BTreeMap, BTreeSet};

use larder_index::tags::TargetEnvironment;
use larder_index::{DistFilename, NormalizedName};
use pep508_rs::Requirement;

use crate::run::{Mirror, Summary};
use crate::source::MirrorSource;

/// Resolves `roots` for each environment and mirrors the union of the
/// files they need (wheels for each environment, sdists and their build
/// requirements where no wheel fits). Files downloaded only to read their
/// metadata that no environment needs are removed again, so the mirror
/// holds the closure and nothing else. Files downloaded while resolving
/// count as downloaded in `summary`, whether kept or removed.
pub async fn mirror_requirements(
    mirror: &Mirror,
    roots: &[Requirement],
    environments: &[TargetEnvironment],
    summary: &mut Summary,
) {
    let source = MirrorSource::new(mirror);
    let mut wanted: BTreeMap<NormalizedName, BTreeSet<String>> = BTreeMap::new();
    for environment in environments {
        let resolution = larder_resolve::resolve(roots, environment, &source).await;
        tracing::info!(%environment, packages = resolution.packages.len(), failures = resolution.failures.len(), "resolved");
        for package in resolution.packages {
            wanted.entry(package.name).or_default().extend(package.files);
        }
        for failure in resolution.failures {
            summary.failures.push((format!("{} (for {environment})", failure.requirement), failure.reason));
        }
        for warning in resolution.warnings {
            tracing::warn!(%environment, project = %warning.name, version = %warning.version, "{}", warning.message);
        }
    }
    let fetched = source.fetched();
    summary.downloaded += fetched.len() as u64;
    summary.while_resolving += fetched.len() as u64;
    summary.bytes += fetched.values().sum::<u64>();
    for probe in source.probed() {
        let chosen = DistFilename::parse(&probe.filename)
            .is_ok_and(|dist| wanted.get(dist.name()).is_some_and(|files| files.contains(&probe.filename)));
        if !chosen {
            match mirror.store().blobs().remove(&probe.sha256).await {
                Ok(_) => {
                    tracing::debug!(filename = %probe.filename, "read for its metadata, not needed: removed");
                    summary.discarded += 1;
                }
                Err(error) => {
                    tracing::warn!(filename = %probe.filename, %error, "cannot remove a file the closure does not need")
                }
            }
        }
    }
    let mut files = Vec::new();
    for (name, filenames) in wanted {
        summary.projects += 1;
        let Ok(records) = source.records(&name).await else { continue };
        files.extend(
            records
                .iter()
                // What the resolution stored already is not counted twice.
                .filter(|record| filenames.contains(&record.filename) && record.url.is_some())
                .filter(|record| !fetched.contains_key(&record.sha256))
                .map(|record| (name.clone(), record.clone())),
        );
    }
    mirror.download(files, summary).await;
}
