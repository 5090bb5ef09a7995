//! PEP 691 JSON rendering of Simple API pages (with PEP 700, 708, 740 and
//! 792 fields).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::names::ListedProject;
use crate::simple::{CoreMetadataLink, FileEntry, ProjectList, ProjectListEntry, ProjectPage, UploadTime, Yanked};

#[derive(Serialize)]
struct Meta<'a> {
    #[serde(rename = "api-version")]
    api_version: &'static str,
    #[serde(rename = "_last-serial", skip_serializing_if = "Option::is_none")]
    last_serial: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tracks: &'a [String],
}

#[derive(Serialize)]
struct ListEntryJson<'a> {
    name: &'a str,
    #[serde(rename = "_last-serial", skip_serializing_if = "Option::is_none")]
    last_serial: Option<u64>,
}

#[derive(Serialize)]
struct PageJson<'a> {
    meta: Meta<'a>,
    name: &'a str,
    files: Vec<FileJson<'a>>,
    versions: &'a [String],
    #[serde(rename = "alternate-locations", skip_serializing_if = "<[String]>::is_empty")]
    alternate_locations: &'a [String],
    #[serde(rename = "project-status", skip_serializing_if = "Option::is_none")]
    project_status: Option<StatusJson<'a>>,
    /// PEP 752 fields, as the source gave them.
    #[serde(flatten)]
    namespaces: BTreeMap<&'a str, Box<RawValue>>,
}

#[derive(Serialize)]
struct StatusJson<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    filename: &'a str,
    url: &'a str,
    hashes: &'a BTreeMap<String, String>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<&'a str>,
    #[serde(rename = "core-metadata")]
    core_metadata: MetadataJson<'a>,
    #[serde(rename = "dist-info-metadata")]
    dist_info_metadata: MetadataJson<'a>,
    #[serde(rename = "gpg-sig", skip_serializing_if = "Option::is_none")]
    gpg_sig: Option<bool>,
    yanked: YankedJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "upload-time", skip_serializing_if = "Option::is_none")]
    upload_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<&'a str>,
}

/// `false`, `true`, or a hash dictionary.
#[derive(Serialize, Clone, Copy)]
#[serde(untagged)]
enum MetadataJson<'a> {
    Flag(bool),
    Hashes(&'a BTreeMap<String, String>),
}

/// `false`, `true`, or a reason string.
#[derive(Serialize)]
#[serde(untagged)]
enum YankedJson<'a> {
    Flag(bool),
    Reason(&'a str),
}

/// Renders the project list as PEP 691 JSON.
pub fn render_project_list(list: &ProjectList) -> String {
    let mut out = Vec::with_capacity(64 + list.projects.len() * 48);
    write_project_list(&mut out, list.projects.iter().map(ProjectListEntry::listed), list.last_serial)
        .expect("a Vec takes every write");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes the project list as PEP 691 JSON, a project at a time (a list
/// of any size, into a compressor or a file).
pub fn write_project_list<'a>(
    out: &mut impl std::io::Write,
    projects: impl Iterator<Item = ListedProject<'a>>,
    last_serial: Option<u64>,
) -> std::io::Result<()> {
    out.write_all(b"{\"meta\":")?;
    serde_json::to_writer(&mut *out, &Meta { api_version: "1.1", last_serial, tracks: &[] })?;
    out.write_all(b",\"projects\":[")?;
    for (i, project) in projects.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let entry = ListEntryJson { name: project.display_name, last_serial: project.last_serial };
        serde_json::to_writer(&mut *out, &entry)?;
    }
    out.write_all(b"]}")
}

/// Renders a project page as PEP 691 JSON.
pub fn render_project_page(page: &ProjectPage) -> String {
    let json = PageJson {
        meta: Meta { api_version: page.api_version(), last_serial: page.last_serial, tracks: &page.tracks },
        name: page.name.as_str(),
        files: page.files.iter().map(file_json).collect(),
        versions: &page.versions,
        alternate_locations: &page.alternate_locations,
        project_status: page.status.as_ref().map(|s| StatusJson { status: &s.status, reason: s.reason.as_deref() }),
        // A value that is not JSON (a damaged store) is left out.
        namespaces: page
            .namespaces
            .iter()
            .filter_map(|(key, raw)| RawValue::from_string(raw.clone()).ok().map(|raw| (key.as_str(), raw)))
            .collect(),
    };
    serde_json::to_string(&json).expect("the page model always serializes")
}

fn file_json(file: &FileEntry) -> FileJson<'_> {
    let metadata = match &file.core_metadata {
        CoreMetadataLink::Absent => MetadataJson::Flag(false),
        CoreMetadataLink::Present(hashes) if hashes.is_empty() => MetadataJson::Flag(true),
        CoreMetadataLink::Present(hashes) => MetadataJson::Hashes(hashes),
    };
    FileJson {
        filename: &file.filename,
        url: &file.url,
        hashes: &file.hashes,
        requires_python: file.requires_python.as_deref(),
        core_metadata: metadata,
        dist_info_metadata: metadata,
        gpg_sig: file.gpg_sig,
        yanked: match &file.yanked {
            Yanked::No => YankedJson::Flag(false),
            Yanked::Yes(None) => YankedJson::Flag(true),
            Yanked::Yes(Some(reason)) => YankedJson::Reason(reason),
        },
        size: file.size,
        upload_time: file.upload_time.as_ref().map(UploadTime::as_str),
        provenance: file.provenance.as_deref(),
    }
}
