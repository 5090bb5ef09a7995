//! The JSON API (`/pypi/<project>/json`) of an index: the same record a
//! project page shows (same shadowing, same release-age policy), with the
//! other digests of uploads and `info` from the stored core metadata.

use larder_index::upload::provenance_document;
use larder_index::{CoreMetadata, IndexDefinition, IndexKind, JsonProject, NormalizedName, ReleaseFile, Sha256};

use crate::layered::{IndexError, Indexes};
use crate::named::{Live, Purpose, Resolution};
use crate::pages::file_entry;

impl Indexes {
    /// The default index as a definition: the hosted `local` layered over
    /// the upstream mirror, as `/simple/` serves it.
    pub fn default_index() -> IndexDefinition {
        let mut index = IndexDefinition::local();
        index.kind = IndexKind::Layered { bases: vec![larder_index::UPSTREAM_INDEX_NAME.to_owned()] };
        index
    }

    /// The JSON API document of `project` (or of one of its releases) in
    /// `index`; `None` when the index has no such project or release.
    /// `files_base` should be absolute. Returned with the project's serial
    /// (for `X-PyPI-Last-Serial`).
    pub async fn json_api(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
        version: Option<&str>,
        files_base: &str,
    ) -> Result<Option<(String, u64)>, IndexError> {
        let live = Live { indexes: self, purpose: Purpose::Serve };
        let Resolution::Found(found) = self.resolve(&live, index, name, 0).await? else {
            return Ok(None);
        };
        let details = self.store.db().upload_details(&index.name, name).await?;
        let files = found
            .record
            .files
            .iter()
            .map(|file| {
                let mut entry = file_entry(file, files_base);
                if file.url.is_none()
                    && let Some(details) = details.get(&file.filename)
                {
                    entry.hashes.insert("md5".to_owned(), details.md5.clone());
                    entry.hashes.insert("blake2b_256".to_owned(), details.blake2b_256.clone());
                }
                ReleaseFile { version: file.version.clone(), entry }
            })
            .collect();
        let last_serial = found.record.last_serial();
        let project = JsonProject { display_name: found.record.display_name.clone(), files, last_serial };
        let shown = match version {
            Some(version) => match project.release(version) {
                Some(release) => Some(release.to_owned()),
                None => return Ok(None),
            },
            None => project.latest_version().map(str::to_owned),
        };
        let metadata_blob =
            found.record.files.iter().filter(|f| Some(&f.version) == shown.as_ref()).find_map(|f| f.metadata_sha256);
        let info = match metadata_blob {
            Some(digest) => match self.store.blobs().read(&digest).await {
                Ok(Some(bytes)) => CoreMetadata::parse(&bytes).ok(),
                _ => None,
            },
            None => None,
        };
        let version = version.and(shown.as_deref());
        Ok(Some((project.render(version, info.as_ref()), last_serial)))
    }

    /// The PEP 740 provenance object of a hosted file uploaded with
    /// attestations.
    pub async fn provenance(&self, sha256: &Sha256, filename: &str) -> Result<String, IndexError> {
        let not_found = || IndexError::NotFound(format!("{filename} has no provenance here"));
        let (index, details) = self.store.db().upload_of(sha256, filename).await?.ok_or_else(not_found)?;
        let blob = details.attestations_sha256.ok_or_else(not_found)?;
        let attestations = self.store.blobs().read(&blob).await?.ok_or_else(not_found)?;
        let attestations = String::from_utf8(attestations).map_err(|_| not_found())?;
        provenance_document(&attestations, &index, details.token_id.as_deref()).ok_or_else(not_found)
    }
}
