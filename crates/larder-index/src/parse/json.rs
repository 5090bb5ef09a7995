//! PEP 691 JSON pages (with the PEP 700, 708, 740 and 792 additions) read
//! into the page model.
//!
//! Unknown keys are ignored and an optional field of the wrong type is
//! treated as missing; only a body that is not JSON, not an object, or
//! lacks its list (`files`, `projects`) fails. The body is read one level
//! at a time ([`shallow`]), so no tree of the whole page is ever built.

mod shallow;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use self::shallow::{Members, Shallow};
use super::{
    Problem, Url, check_api_version, hash_map, is_hostile_filename, non_empty, project_status, resolve,
    resolve_to_string, versions_of_files,
};
use crate::NormalizedName;
use crate::simple::{CoreMetadataLink, FileEntry, NAMESPACE_KEYS, ProjectPage, ProjectStatus, UploadTime, Yanked};

/// Reads a project page.
pub(super) fn project_page(body: &[u8], page_url: &Url, name: &NormalizedName) -> Result<ProjectPage, Problem> {
    let root = parse_object(body)?;
    let meta = Meta::read(&root)?;
    let files: Vec<FileEntry> = objects(list(&root, "files")?).filter_map(|file| file_entry(&file, page_url)).collect();
    // PEP 700 `versions` is passed on as the page gives it: its order, its
    // spelling (`0.4.0beta1`), versions without files.
    let versions = match root.get("versions").and_then(Shallow::into_array) {
        Some(versions) => versions.iter().filter_map(|v| Shallow::of(v).into_string().map(Cow::into_owned)).collect(),
        None => versions_of_files(&files, name),
    };
    Ok(ProjectPage {
        name: name.clone(),
        files,
        versions,
        last_serial: meta.last_serial,
        tracks: urls(meta.object.and_then(|meta| meta.get("tracks")), page_url),
        alternate_locations: urls(root.get("alternate-locations"), page_url),
        status: root.get("project-status").and_then(Shallow::into_object).and_then(|object| status(&object)),
        namespaces: NAMESPACE_KEYS
            .iter()
            .filter_map(|key| root.raw(key).map(|raw| ((*key).to_owned(), raw.get().to_owned())))
            .collect(),
    })
}

/// Reads the project list, handing each project to `on_project` as it is
/// read (the items stay unparsed slices of the body until then); returns
/// the list's `_last-serial`.
pub(super) fn for_each_project(
    body: &[u8],
    mut on_project: impl FnMut(&str, Option<u64>),
) -> Result<Option<u64>, Problem> {
    let root = parse_object(body)?;
    let meta = Meta::read(&root)?;
    for project in objects(list(&root, "projects")?) {
        if let Some(display_name) = string(&project, "name") {
            on_project(display_name.trim(), project.get("_last-serial").and_then(Shallow::into_serial));
        }
    }
    Ok(meta.last_serial)
}

/// Parses `body` as a JSON object.
fn parse_object(body: &[u8]) -> Result<Members<'_>, Problem> {
    match Shallow::parse(body) {
        Ok(Shallow::Object(members)) => Ok(members),
        Ok(other) => Err(Problem::malformed(format!("its top level is {}, not an object", other.kind()))),
        Err(error) => Err(Problem::NotJson(error.to_string())),
    }
}

/// The items of the array under `key`, which a page must have.
fn list<'a>(root: &Members<'a>, key: &str) -> Result<Vec<&'a RawValue>, Problem> {
    match root.get(key) {
        Some(Shallow::Array(items)) => Ok(items),
        Some(other) => Err(Problem::malformed(format!("`{key}` is {}, not an array", other.kind()))),
        None => Err(Problem::malformed(format!("it has no `{key}` array"))),
    }
}

/// The items that are objects, read one at a time.
fn objects<'a>(items: Vec<&'a RawValue>) -> impl Iterator<Item = Members<'a>> {
    items.into_iter().filter_map(|item| Shallow::of(item).into_object())
}

/// The `meta` object of a page.
struct Meta<'a> {
    /// The object itself, when the page has one.
    object: Option<Members<'a>>,
    /// `_last-serial`, when it is a non-negative integer.
    last_serial: Option<u64>,
}

impl<'a> Meta<'a> {
    /// Reads `meta`; fails when its `api-version` has another major version.
    fn read(root: &Members<'a>) -> Result<Self, Problem> {
        let object = root.get("meta").and_then(Shallow::into_object);
        if let Some(version) = object.as_ref().and_then(|meta| string(meta, "api-version")) {
            check_api_version(&version)?;
        }
        let last_serial = object.as_ref().and_then(|meta| meta.get("_last-serial")).and_then(Shallow::into_serial);
        Ok(Self { object, last_serial })
    }
}

/// One file of a project page; `None` without a usable `filename` and `url`.
fn file_entry(file: &Members, page_url: &Url) -> Option<FileEntry> {
    let filename = string(file, "filename")?;
    if is_hostile_filename(&filename) {
        return None;
    }
    let mut url = resolve(page_url, &string(file, "url")?)?;
    url.set_fragment(None);
    Some(FileEntry {
        filename: filename.into_owned(),
        url: url.into(),
        hashes: file.get("hashes").and_then(hashes).unwrap_or_default(),
        requires_python: string(file, "requires-python").and_then(|text| non_empty(&text)),
        core_metadata: core_metadata(file),
        gpg_sig: file.get("gpg-sig").and_then(Shallow::into_bool),
        yanked: yanked(file.get("yanked")),
        size: file.get("size").and_then(Shallow::into_u64),
        upload_time: string(file, "upload-time").and_then(|time| UploadTime::parse(&time)),
        provenance: string(file, "provenance").and_then(|url| resolve_to_string(page_url, url.trim())),
    })
}

/// The string under `key`, when it is one.
fn string<'a>(object: &Members<'a>, key: &str) -> Option<Cow<'a, str>> {
    object.get(key).and_then(Shallow::into_string)
}

/// A hash dictionary; entries that are not `name: hex digest` are skipped.
/// `None` when `value` is not an object.
fn hashes(value: Shallow) -> Option<BTreeMap<String, String>> {
    let object = value.into_object()?;
    let pairs: Vec<(&str, Cow<str>)> =
        object.iter().filter_map(|(name, digest)| Some((name, digest.into_string()?))).collect();
    Some(hash_map(pairs.iter().map(|(name, digest)| (*name, digest.as_ref()))))
}

/// PEP 658/714 metadata: `core-metadata`, else the legacy
/// `dist-info-metadata`, each `false`, `true` or a hash dictionary; a
/// missing key or one of another type means absent.
fn core_metadata(file: &Members) -> CoreMetadataLink {
    let usable = |key: &str| file.get(key).filter(|value| matches!(value, Shallow::Bool(_) | Shallow::Object(_)));
    match usable("core-metadata").or_else(|| usable("dist-info-metadata")) {
        Some(Shallow::Bool(true)) => CoreMetadataLink::Present(Default::default()),
        Some(value @ Shallow::Object(_)) => CoreMetadataLink::Present(hashes(value).unwrap_or_default()),
        _ => CoreMetadataLink::Absent,
    }
}

/// PEP 592 yank state: `false`, `true`, or a reason, kept as written (an
/// empty reason still means yanked).
fn yanked(value: Option<Shallow>) -> Yanked {
    match value {
        Some(Shallow::Bool(true)) => Yanked::Yes(None),
        Some(Shallow::String(reason)) => Yanked::yes_with(&reason),
        _ => Yanked::No,
    }
}

/// A list of URLs resolved against `page_url`; entries that are not
/// strings or not URLs are skipped, and a value that is not an array gives
/// none.
fn urls(value: Option<Shallow>, page_url: &Url) -> Vec<String> {
    let items = value.and_then(Shallow::into_array).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| Shallow::of(item).into_string())
        .filter_map(|url| resolve_to_string(page_url, url.trim()))
        .collect()
}

/// PEP 792 status: `{"status": ..., "reason": ...}`. The PEP's prose calls
/// the marker key `state` while its example and the index use `status`, so
/// `state` is read when `status` is missing.
fn status(object: &Members) -> Option<ProjectStatus> {
    let marker = string(object, "status").or_else(|| string(object, "state"))?;
    project_status(&marker, string(object, "reason").as_deref())
}
