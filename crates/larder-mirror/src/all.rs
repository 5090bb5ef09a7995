//! `larder mirror --all`: the whole upstream index, incrementally.
//!
//! The upstream's project list gives each project's last serial (PEP 691
//! `_last-serial`). A project is fetched when its serial differs from the
//! one recorded after it was last mirrored completely; the serial is
//! recorded only once its page and every selected file are stored, so a
//! killed run resumes where it stopped and an unchanged index costs one
//! request. Projects gone from the list are dropped. When the upstream gives
//! no serials, every project page is revalidated (cheap with ETags). A run
//! with other filters than the last looks at every project again: what a
//! wider filter keeps was left out before, whatever the serials say.
//! Work goes in chunks, so memory stays bounded by the chunk, not the index.

use std::collections::HashSet;

use jiff::Timestamp;
use larder_upstream::{FetchFailure, Upstreams};

use crate::run::{Mirror, Summary};

/// Projects handled per chunk.
const CHUNK: usize = 500;

/// Why a whole-index run could not start.
#[derive(Debug, thiserror::Error)]
pub enum AllError {
    /// The project list could not be fetched.
    #[error(transparent)]
    List(#[from] FetchFailure),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] larder_store::DbError),
}

/// What a whole-index run did besides the per-project summary.
#[derive(Debug, Default)]
pub struct AllReport {
    /// Projects on the upstream list.
    pub listed: u64,
    /// Projects skipped because their serial had not changed.
    pub unchanged: u64,
    /// Projects dropped because they are gone upstream.
    pub removed: u64,
}

/// Mirrors every project the upstream lists (that the filter allows).
pub async fn mirror_all(mirror: &Mirror, upstreams: &Upstreams, summary: &mut Summary) -> Result<AllReport, AllError> {
    let list = upstreams.fetch_project_list().await?;
    let db = mirror.store().db();
    let mut known = db.mirror_serials().await?;
    let fingerprint = mirror.filter().fingerprint();
    let same_filter = db.mirror_fingerprint().await?.as_deref() == Some(fingerprint.as_str());
    if !same_filter {
        tracing::info!("the filters differ from the last run's: every project is looked at again");
        db.reset_mirror_serials(&fingerprint).await?;
    }
    let mut report = AllReport { listed: list.projects.len() as u64, ..AllReport::default() };
    let listed: HashSet<_> = list.projects.iter().map(|p| p.name.clone()).collect();
    let changed: Vec<_> = list
        .projects
        .into_iter()
        .filter(|project| {
            let unchanged = same_filter
                && project.last_serial.is_some()
                && known.get(&project.name) == project.last_serial.as_ref();
            report.unchanged += u64::from(unchanged);
            !unchanged
        })
        .map(|project| (project.name, project.last_serial))
        .collect();
    tracing::info!(listed = report.listed, changed = changed.len(), "upstream project list read");
    for chunk in changed.chunks(CHUNK) {
        let names: Vec<_> = chunk.iter().map(|(name, _)| name.clone()).collect();
        let complete = mirror.projects(&names, summary).await;
        let done: Vec<_> = chunk
            .iter()
            .filter(|(name, _)| complete.contains(name))
            .filter_map(|(name, serial)| serial.map(|serial| (name.clone(), serial)))
            .collect();
        db.set_mirror_serials(&done).await?;
    }
    known.retain(|name, _| !listed.contains(name));
    for gone in known.keys() {
        db.mark_page_missing(gone, Timestamp::now()).await?;
        db.forget_mirror_serial(gone).await?;
        report.removed += 1;
    }
    Ok(report)
}
