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

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use jiff::Timestamp;
use larder_index::NormalizedName;
use larder_index::parse::for_each_listed_project;
use larder_upstream::{FetchFailure, Upstreams};
use tokio::sync::mpsc;

use crate::run::{Mirror, Summary};

/// Projects handled per chunk.
const CHUNK: usize = 500;

/// Recorded serials read per statement while looking for projects gone
/// upstream.
const SERIALS_PAGE: i64 = 5_000;

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
///
/// The list is read as it is parsed (on a thread of its own, a chunk of
/// projects ahead), never held as a whole: memory per listed project is a
/// 64-bit hash of its name, kept to find the projects gone upstream.
pub async fn mirror_all(mirror: &Mirror, upstreams: &Upstreams, summary: &mut Summary) -> Result<AllReport, AllError> {
    let db = mirror.store().db();
    let fingerprint = mirror.filter().fingerprint();
    let same_filter = db.mirror_fingerprint().await?.as_deref() == Some(fingerprint.as_str());
    if !same_filter {
        tracing::info!("the filters differ from the last run's: every project is looked at again");
        db.reset_mirror_serials(&fingerprint).await?;
    }
    let (sender, listed) = mpsc::channel(CHUNK);
    let reading = async move {
        let result = upstreams
            .fetch_project_list_with(|body, content_type| {
                let sender = sender.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        for_each_listed_project(&body, content_type.as_deref(), |name, serial| {
                            if let Ok(name) = NormalizedName::new(name) {
                                // The receiver is gone only when the run failed.
                                let _ = sender.blocking_send((name, serial));
                            }
                        })
                        .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())?
                }
            })
            .await;
        drop(sender);
        result
    };
    let mut report = AllReport::default();
    let mut seen = Vec::new();
    let mirroring = async {
        // Owned here: when this fails, the reader stops waiting for room.
        let mut listed = listed;
        let mut chunk = Vec::with_capacity(CHUNK);
        while listed.recv_many(&mut chunk, CHUNK).await > 0 {
            seen.extend(chunk.iter().map(|(name, _): &(NormalizedName, _)| name_hash(name)));
            report.listed += chunk.len() as u64;
            mirror_chunk(mirror, std::mem::take(&mut chunk), same_filter, &mut report, summary).await?;
        }
        Ok::<_, AllError>(())
    };
    let (list, mirrored) = tokio::join!(reading, mirroring);
    list?;
    mirrored?;
    tracing::info!(listed = report.listed, unchanged = report.unchanged, "upstream project list read");
    seen.sort_unstable();
    report.removed = drop_gone(mirror, &seen).await?;
    Ok(report)
}

/// Mirrors the projects of one chunk of the list whose serial changed,
/// and records their serials once they are complete.
async fn mirror_chunk(
    mirror: &Mirror,
    mut chunk: Vec<(NormalizedName, Option<u64>)>,
    same_filter: bool,
    report: &mut AllReport,
    summary: &mut Summary,
) -> Result<(), AllError> {
    let db = mirror.store().db();
    chunk.sort_unstable();
    chunk.dedup_by(|later, earlier| later.0 == earlier.0);
    let names: Vec<NormalizedName> = chunk.iter().map(|(name, _)| name.clone()).collect();
    let known = if same_filter { db.mirror_serials_of(&names).await? } else { Default::default() };
    let changed: Vec<_> = chunk
        .into_iter()
        .filter(|(name, serial)| {
            let unchanged = serial.is_some() && known.get(name) == serial.as_ref();
            report.unchanged += u64::from(unchanged);
            !unchanged
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let names: Vec<_> = changed.iter().map(|(name, _)| name.clone()).collect();
    let complete = mirror.projects(&names, summary).await;
    let done: Vec<_> = changed
        .into_iter()
        .filter(|(name, _)| complete.contains(name))
        .filter_map(|(name, serial)| serial.map(|serial| (name, serial)))
        .collect();
    db.set_mirror_serials(&done).await?;
    Ok(())
}

/// Drops the projects mirrored before that the list no longer names
/// (`seen`: the sorted hashes of the names it listed); returns how many.
/// Two names with one hash would keep a gone project: at 64 bits, about
/// one chance in 10^7 for the public index's size, and only until it is
/// listed or recorded again.
async fn drop_gone(mirror: &Mirror, seen: &[u64]) -> Result<u64, AllError> {
    let db = mirror.store().db();
    let mut gone = Vec::new();
    let mut after: Option<NormalizedName> = None;
    loop {
        let page = db.mirror_serials_after(after.as_ref(), SERIALS_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        gone.extend(
            page.into_iter().map(|(name, _)| name).filter(|name| seen.binary_search(&name_hash(name)).is_err()),
        );
    }
    for name in &gone {
        db.mark_page_missing(name, Timestamp::now()).await?;
        db.forget_mirror_serial(name).await?;
    }
    Ok(gone.len() as u64)
}

/// A name's 64-bit hash (the same in every run of one build).
fn name_hash(name: &NormalizedName) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(name.as_str())
}
