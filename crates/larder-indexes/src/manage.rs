//! Yank, unyank and delete files of a hosted index: one file, or every file
//! of a release; and set a hosted project's PEP 792 status. Each change is
//! one journal entry, so the next page request shows it (page caches
//! follow the journal).

use std::str::FromStr;

use larder_index::{IndexDefinition, NormalizedName, ProjectStatus, Version};

use crate::layered::{IndexError, Indexes};

/// Which files a change is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every file of a release.
    Release(String),
    /// One file.
    File(String),
}

/// A change to files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// PEP 592 yank, with a reason (possibly empty).
    Yank(String),
    /// Undo a yank.
    Unyank,
    /// Remove for good; the filenames are never reused.
    Delete,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The index holds no uploads.
    #[error("index {0} is a mirror: its files cannot be changed here")]
    NotHosted(String),
    /// Nothing matches.
    #[error("{0}")]
    NotFound(String),
    /// Not a PEP 792 status.
    #[error("unknown project status {0:?}: use active, archived, quarantined or deprecated")]
    Status(String),
    /// Reading or writing the store failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<larder_store::DbError> for ChangeError {
    fn from(error: larder_store::DbError) -> Self {
        Self::Index(error.into())
    }
}

impl Indexes {
    /// Applies `change` to the `target` files of `project` in `index`;
    /// returns the filenames changed.
    pub async fn change_files(
        &self,
        index: &IndexDefinition,
        project: &NormalizedName,
        target: &Target,
        change: &Change,
    ) -> Result<Vec<String>, ChangeError> {
        if !index.kind.takes_uploads() {
            return Err(ChangeError::NotHosted(index.name.clone()));
        }
        let record = self.store.db().project(&index.name, project).await?;
        let files = record.map(|r| r.files).unwrap_or_default();
        let chosen: Vec<String> = match target {
            Target::File(filename) => {
                files.iter().filter(|f| &f.filename == filename).map(|f| f.filename.clone()).collect()
            }
            Target::Release(version) => {
                let wanted = Version::from_str(version).ok();
                files
                    .iter()
                    .filter(|f| {
                        f.version == *version || (wanted.is_some() && Version::from_str(&f.version).ok() == wanted)
                    })
                    .map(|f| f.filename.clone())
                    .collect()
            }
        };
        if chosen.is_empty() {
            let what = match target {
                Target::File(filename) => format!("no file {filename}"),
                Target::Release(version) => format!("no release {version}"),
            };
            return Err(ChangeError::NotFound(format!("{what} of project {project} in index {}", index.name)));
        }
        match change {
            Change::Yank(reason) => self.store.db().set_yanked(&index.name, project, &chosen, Some(reason)).await?,
            Change::Unyank => self.store.db().set_yanked(&index.name, project, &chosen, None).await?,
            Change::Delete => self.store.db().delete_files(&index.name, project, &chosen).await?,
        };
        Ok(chosen)
    }

    /// Sets the PEP 792 status of `project` in `index` (`active`,
    /// `archived`, `quarantined` or `deprecated`, with an optional reason):
    /// an archived or quarantined project takes no uploads, a quarantined
    /// one lists no files.
    pub async fn set_project_status(
        &self,
        index: &IndexDefinition,
        project: &NormalizedName,
        status: ProjectStatus,
    ) -> Result<(), ChangeError> {
        if !index.kind.takes_uploads() {
            return Err(ChangeError::NotHosted(index.name.clone()));
        }
        if !STATUSES.contains(&status.status.as_str()) {
            return Err(ChangeError::Status(status.status));
        }
        if !self.store.db().set_project_status(&index.name, project, &status).await? {
            return Err(ChangeError::NotFound(format!("no project {project} in index {}", index.name)));
        }
        Ok(())
    }
}

/// The statuses of PEP 792.
const STATUSES: [&str; 4] = ["active", "archived", "quarantined", "deprecated"];
