//! Reading an index as Simple API pages.

use std::collections::BTreeMap;

use larder_index::{
    simple::sorted_versions, CoreMetadataLink, FileEntry, NormalizedName, ProjectList, ProjectListEntry, ProjectPage,
    Yanked,
};
use larder_store::{DbError, FileRecord, ProjectRecord, Store};

/// The project list of `index`.
pub async fn project_list(store: &Store, index: &str) -> Result<ProjectList, DbError> {
    let projects = store.db.projects(index).await?;
    Ok(ProjectList {
        projects: projects
            .into_iter()
            .map(|p| ProjectListEntry { display_name: p.display_name, name: p.name })
            .collect(),
        last_serial: Some(store.db.last_serial().await?),
    })
}

/// The page of one project of `index`, or `None` when the index does not
/// have it. File URLs are `<files_base><sha256>/<filename>`.
pub async fn project_page(
    store: &Store,
    index: &str,
    name: &NormalizedName,
    files_base: &str,
) -> Result<Option<ProjectPage>, DbError> {
    let Some(record) = store.db.project(index, name).await? else {
        return Ok(None);
    };
    Ok(Some(page_from_record(name, record, files_base)))
}

/// The download path of a stored file below the files root.
pub fn file_path(file: &FileRecord) -> String {
    format!("{}/{}", file.sha256, file.filename)
}

fn page_from_record(name: &NormalizedName, record: ProjectRecord, files_base: &str) -> ProjectPage {
    let versions = sorted_versions(record.files.iter().map(|f| f.version.as_str()));
    ProjectPage {
        name: name.clone(),
        files: record.files.iter().map(|f| file_entry(f, files_base)).collect(),
        versions,
        last_serial: Some(record.serial),
        tracks: Vec::new(),
        alternate_locations: Vec::new(),
        status: None,
    }
}

fn file_entry(file: &FileRecord, files_base: &str) -> FileEntry {
    let core_metadata = match file.metadata_sha256 {
        Some(sha256) if file.serve_metadata => {
            CoreMetadataLink::Present(BTreeMap::from([("sha256".to_owned(), sha256.to_hex())]))
        }
        _ => CoreMetadataLink::Absent,
    };
    FileEntry {
        filename: file.filename.clone(),
        url: format!("{files_base}{}", file_path(file)),
        hashes: BTreeMap::from([("sha256".to_owned(), file.sha256.to_hex())]),
        requires_python: file.requires_python.clone(),
        core_metadata,
        gpg_sig: None,
        yanked: match &file.yanked {
            None => Yanked::No,
            Some(reason) if reason.is_empty() => Yanked::Yes(None),
            Some(reason) => Yanked::Yes(Some(reason.clone())),
        },
        size: Some(file.size),
        upload_time: Some(file.upload_time),
        provenance: None,
    }
}
