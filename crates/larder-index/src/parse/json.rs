//! PEP 691 JSON pages (with the PEP 700, 708, 740 and 792 additions) read
//! into the page model.
//!
//! Unknown keys are ignored and an optional field of the wrong type is
//! treated as missing; only a body that is not JSON, not an object, or
//! lacks its list (`files`, `projects`) fails.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    check_api_version, hash_map, is_hostile_filename, non_empty, project_status, resolve, resolve_to_string,
    sorted_project_list, versions_of_files, Problem, Url,
};
use crate::simple::{
    sorted_versions, CoreMetadataLink, FileEntry, ProjectList, ProjectListEntry, ProjectPage, ProjectStatus, Yanked,
};
use crate::NormalizedName;

/// A JSON object.
type Object = Map<String, Value>;

/// Reads a project page.
pub(super) fn project_page(body: &[u8], page_url: &Url, name: &NormalizedName) -> Result<ProjectPage, Problem> {
    let root = parse_object(body)?;
    let meta = Meta::read(&root)?;
    let files: Vec<FileEntry> = list(&root, "files")?
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|file| file_entry(file, page_url))
        .collect();
    let versions = match root.get("versions").and_then(Value::as_array) {
        Some(versions) => sorted_versions(versions.iter().filter_map(Value::as_str)),
        None => versions_of_files(&files, name),
    };
    Ok(ProjectPage {
        name: name.clone(),
        files,
        versions,
        last_serial: meta.last_serial,
        tracks: urls(meta.object.and_then(|meta| meta.get("tracks")), page_url),
        alternate_locations: urls(root.get("alternate-locations"), page_url),
        status: root.get("project-status").and_then(Value::as_object).and_then(status),
    })
}

/// Reads the project list.
pub(super) fn project_list(body: &[u8]) -> Result<ProjectList, Problem> {
    let root = parse_object(body)?;
    let meta = Meta::read(&root)?;
    let projects = list(&root, "projects")?
        .iter()
        .filter_map(|project| {
            let display_name = project.get("name")?.as_str()?.trim();
            let name = NormalizedName::new(display_name).ok()?;
            let last_serial = project.get("_last-serial").and_then(Value::as_u64);
            Some(ProjectListEntry { display_name: display_name.to_owned(), name, last_serial })
        })
        .collect();
    Ok(sorted_project_list(ProjectList { projects, last_serial: meta.last_serial }))
}

/// Parses `body` as a JSON object.
fn parse_object(body: &[u8]) -> Result<Object, Problem> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Problem::malformed(format!("its top level is {}, not an object", kind(&other)))),
        Err(error) => Err(Problem::NotJson(error.to_string())),
    }
}

/// The array under `key`, which a page must have.
fn list<'v>(root: &'v Object, key: &str) -> Result<&'v Vec<Value>, Problem> {
    match root.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(Problem::malformed(format!("`{key}` is {}, not an array", kind(other)))),
        None => Err(Problem::malformed(format!("it has no `{key}` array"))),
    }
}

/// What kind of JSON value `value` is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `meta` object of a page.
struct Meta<'v> {
    /// The object itself, when the page has one.
    object: Option<&'v Object>,
    /// `_last-serial`, when it is a non-negative integer.
    last_serial: Option<u64>,
}

impl<'v> Meta<'v> {
    /// Reads `meta`; fails when its `api-version` has another major version.
    fn read(root: &'v Object) -> Result<Self, Problem> {
        let object = root.get("meta").and_then(Value::as_object);
        if let Some(version) = object.and_then(|meta| meta.get("api-version")).and_then(Value::as_str) {
            check_api_version(version)?;
        }
        let last_serial = object.and_then(|meta| meta.get("_last-serial")).and_then(Value::as_u64);
        Ok(Self { object, last_serial })
    }
}

/// One file of a project page; `None` without a usable `filename` and `url`.
fn file_entry(file: &Object, page_url: &Url) -> Option<FileEntry> {
    let filename = file.get("filename")?.as_str()?;
    if is_hostile_filename(filename) {
        return None;
    }
    let mut url = resolve(page_url, file.get("url")?.as_str()?)?;
    url.set_fragment(None);
    Some(FileEntry {
        filename: filename.to_owned(),
        url: url.into(),
        hashes: hashes(file.get("hashes")).unwrap_or_default(),
        requires_python: string(file, "requires-python").and_then(non_empty),
        core_metadata: core_metadata(file),
        gpg_sig: file.get("gpg-sig").and_then(Value::as_bool),
        yanked: yanked(file.get("yanked")),
        size: file.get("size").and_then(Value::as_u64),
        upload_time: string(file, "upload-time").and_then(|time| time.trim().parse().ok()),
        provenance: string(file, "provenance").and_then(|url| resolve_to_string(page_url, url.trim())),
    })
}

/// The string under `key`, when it is one.
fn string<'v>(object: &'v Object, key: &str) -> Option<&'v str> {
    object.get(key).and_then(Value::as_str)
}

/// A hash dictionary; entries that are not `name: hex digest` are skipped.
/// `None` when `value` is not an object.
fn hashes(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let object = value?.as_object()?;
    Some(hash_map(object.iter().filter_map(|(name, digest)| Some((name.as_str(), digest.as_str()?)))))
}

/// PEP 658/714 metadata: `core-metadata`, else the legacy
/// `dist-info-metadata`, each `false`, `true` or a hash dictionary; a
/// missing key or one of another type means absent.
fn core_metadata(file: &Object) -> CoreMetadataLink {
    let usable = |key: &str| file.get(key).filter(|value| value.is_boolean() || value.is_object());
    match usable("core-metadata").or_else(|| usable("dist-info-metadata")) {
        Some(Value::Bool(true)) => CoreMetadataLink::Present(Default::default()),
        Some(value @ Value::Object(_)) => CoreMetadataLink::Present(hashes(Some(value)).unwrap_or_default()),
        _ => CoreMetadataLink::Absent,
    }
}

/// PEP 592 yank state: `false`, `true`, or a reason (an empty reason still
/// means yanked).
fn yanked(value: Option<&Value>) -> Yanked {
    match value {
        Some(Value::Bool(true)) => Yanked::Yes(None),
        Some(Value::String(reason)) => Yanked::Yes(non_empty(reason)),
        _ => Yanked::No,
    }
}

/// A list of URLs resolved against `page_url`; entries that are not
/// strings or not URLs are skipped, and a value that is not an array gives
/// none.
fn urls(value: Option<&Value>, page_url: &Url) -> Vec<String> {
    let items = value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).filter_map(|url| resolve_to_string(page_url, url.trim())).collect()
}

/// PEP 792 status: `{"status": ..., "reason": ...}`. The PEP's prose calls
/// the marker key `state` while its example and the index use `status`, so
/// `state` is read when `status` is missing.
fn status(object: &Object) -> Option<ProjectStatus> {
    let marker = string(object, "status").or_else(|| string(object, "state"))?;
    project_status(marker, string(object, "reason"))
}
