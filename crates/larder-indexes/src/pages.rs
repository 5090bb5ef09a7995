//! Building Simple API pages from what the store holds for an index.

use std::collections::BTreeMap;

use larder_index::{CoreMetadataLink, FileEntry, NormalizedName, ProjectPage, Yanked, simple::sorted_versions};
use larder_store::{Blobs, FileRecord, PROVENANCE_SUFFIX, ProjectRecord};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The page of a project from its stored record. File URLs are
/// `<files_base><sha256>/<filename>`, always pointing back at larder.
pub fn page_from_record(name: &NormalizedName, record: ProjectRecord, files_base: &str) -> ProjectPage {
    let last_serial = record.last_serial();
    let upstream = record.upstream.unwrap_or_default();
    // An upstream's own list is passed on as it is (order, spelling,
    // versions without files); larder derives one only where none was
    // given. Files it cannot read a version from are listed all the same.
    let versions = if upstream.versions.is_empty() {
        sorted_versions(record.files.iter().map(|f| f.version.as_str()).filter(|v| !v.is_empty()))
    } else {
        upstream.versions
    };
    // PEP 792: a quarantined project lists no files, but keeps its versions.
    let quarantined = upstream.status.as_ref().is_some_and(|s| s.status == "quarantined");
    ProjectPage {
        name: name.clone(),
        files: if quarantined { Vec::new() } else { record.files.iter().map(|f| file_entry(f, files_base)).collect() },
        versions,
        last_serial: Some(last_serial),
        tracks: upstream.tracks,
        alternate_locations: upstream.alternate_locations,
        status: upstream.status,
        namespaces: upstream.namespaces,
    }
}

/// The files whose blob is stored, advertising `.metadata` only where its
/// blob is stored too: what can be served with no upstream (offline, or
/// from a static export). A filtered mirror holds part of each upstream
/// page, and its pages list only that part.
pub async fn stored_only(blobs: &Blobs, files: Vec<FileRecord>) -> Vec<FileRecord> {
    let mut stored = Vec::with_capacity(files.len());
    for mut file in files {
        if !blobs.contains(&file.sha256).await {
            continue;
        }
        let metadata_stored = match file.metadata_sha256 {
            Some(digest) => blobs.contains(&digest).await,
            None => false,
        };
        file.serve_metadata &= metadata_stored;
        stored.push(file);
    }
    stored
}

/// What a filename keeps as it is in a URL path segment: RFC 3986's
/// unreserved characters. Everything else (`+` of a local version, `%`,
/// spaces, `#`, `?`, non-ASCII...) is percent-encoded, so the link names
/// exactly the file (the server decodes the segment back).
const FILENAME_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The download path of a file below the files root, as a URL path: its
/// digest, then its filename percent-encoded.
pub fn file_path(file: &FileRecord) -> String {
    format!("{}/{}", file.sha256, utf8_percent_encode(&file.filename, FILENAME_SEGMENT))
}

/// The Simple API entry of a stored file; its URL is `<files_base><sha256>/<filename>`.
pub(crate) fn file_entry(file: &FileRecord, files_base: &str) -> FileEntry {
    let core_metadata = match (file.serve_metadata, file.metadata_sha256) {
        (false, _) => CoreMetadataLink::Absent,
        (true, None) => CoreMetadataLink::Present(BTreeMap::new()),
        (true, Some(digest)) => CoreMetadataLink::Present(BTreeMap::from([("sha256".to_owned(), digest.to_hex())])),
    };
    FileEntry {
        filename: file.filename.clone(),
        url: format!("{files_base}{}", file_path(file)),
        hashes: BTreeMap::from([("sha256".to_owned(), file.sha256.to_hex())]),
        requires_python: file.requires_python.clone(),
        core_metadata,
        // larder does not serve `.asc` signatures, so it never advertises one.
        gpg_sig: None,
        yanked: match &file.yanked {
            None => Yanked::No,
            Some(reason) if reason.is_empty() => Yanked::Yes(None),
            Some(reason) => Yanked::Yes(Some(reason.clone())),
        },
        size: file.size,
        upload_time: file.upload_time.clone(),
        // A hosted file's provenance is served beside it (the store keeps
        // the path `<sha256>/<filename>.provenance`); a proxied file's is
        // the upstream's URL.
        provenance: match (&file.url, &file.provenance) {
            (None, Some(_)) => Some(format!("{files_base}{}{PROVENANCE_SUFFIX}", file_path(file))),
            (_, provenance) => provenance.clone(),
        },
    }
}
