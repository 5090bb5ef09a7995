//! A synthetic upstream index of any size, generated on the fly: nothing
//! is kept on disk or in memory per project, so it serves 2,000 or
//! 2,000,000 projects alike (the bench's whole-index rehearsal).
//!
//! Project `i` (of `projects`) is `synth-<i>` with three releases `1.0`,
//! `2.0`, `3.0`, one small valid wheel each. Every later generation `g`
//! (`1..=generation`) adds a release `<3+g>.0` to the projects with
//! `(i + g) % changed_every == 0`, so generation 1 with `changed_every`
//! 100 changes 1% of the projects. Serials follow: project `i` has serial
//! `i + 1`, or `g * projects + i + 1` after the last generation that
//! changed it.
//!
//! It speaks what mirrors read: the PEP 691 project list with
//! `_last-serial` (streamed, a chunk of projects at a time), PEP 691 and
//! PEP 503 project pages, the legacy JSON API (`/pypi/<name>/json`), the
//! wheels under `/files/<filename>` and `/packages/<anything>/<filename>`,
//! and their `.metadata` (PEP 658); every page says
//! `X-PyPI-Last-Serial`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{Wheel, sha256_hex};

/// Projects rendered per chunk of the streamed project list.
const LIST_CHUNK: u64 = 1000;

/// The media type of PEP 691 JSON.
const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// The shape of a synthetic index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synthetic {
    /// How many projects it lists.
    pub projects: u64,
    /// How many generations of changes have happened (0: none).
    pub generation: u64,
    /// One project in this many changes per generation.
    pub changed_every: u64,
}

/// One file of a synthetic project.
#[derive(Clone, Debug)]
pub struct SyntheticFile {
    /// The wheel's filename.
    pub filename: String,
    /// Its version.
    pub version: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its `METADATA`.
    pub metadata: Vec<u8>,
}

impl Synthetic {
    /// The name of project `i`.
    pub fn name(i: u64) -> String {
        format!("synth-{i:07}")
    }

    /// The project number of a name, when it is one of this index's.
    fn number(&self, name: &str) -> Option<u64> {
        let i: u64 = name.strip_prefix("synth-").filter(|n| n.len() == 7)?.parse().ok()?;
        (i < self.projects).then_some(i)
    }

    /// The generations (`1..=generation`) that changed project `i`.
    fn changes(&self, i: u64) -> impl Iterator<Item = u64> + '_ {
        (1..=self.generation).filter(move |g| (i + g).is_multiple_of(self.changed_every.max(1)))
    }

    /// The serial of project `i`.
    pub fn serial(&self, i: u64) -> u64 {
        self.changes(i).last().map_or(i + 1, |g| g * self.projects + i + 1)
    }

    /// The serial of the whole index.
    pub fn last_serial(&self) -> u64 {
        (self.generation + 1) * self.projects
    }

    /// The versions of project `i`, oldest first.
    pub fn versions(&self, i: u64) -> Vec<String> {
        (1..=3).chain(self.changes(i).map(|g| 3 + g)).map(|major| format!("{major}.0")).collect()
    }

    /// The files of project `i`, built.
    pub fn files(&self, i: u64) -> Vec<SyntheticFile> {
        self.versions(i).into_iter().map(|version| file(&Self::name(i), &version)).collect()
    }

    /// The file named `filename`, when this index has it.
    pub fn file(&self, filename: &str) -> Option<SyntheticFile> {
        let stem = filename.strip_suffix("-py3-none-any.whl")?;
        let (name, version) = stem.rsplit_once('-')?;
        let i = self.number(&name.replace('_', "-"))?;
        self.versions(i).contains(&version.to_owned()).then(|| file(&Self::name(i), version))
    }

    /// The number of files the whole index has.
    pub fn file_count(&self) -> u64 {
        (0..self.projects).map(|i| self.versions(i).len() as u64).sum()
    }
}

fn file(name: &str, version: &str) -> SyntheticFile {
    let wheel = Wheel::new(name, version);
    SyntheticFile {
        filename: wheel.filename(),
        version: version.to_owned(),
        bytes: wheel.to_bytes(),
        metadata: wheel.metadata_text().into_bytes(),
    }
}

/// When a version was uploaded (fixed, one day per major version).
fn upload_time(version: &str) -> String {
    let day: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(1);
    format!("2024-01-{:02}T00:00:00.000000Z", day.clamp(1, 28))
}

/// Starts serving `index` on 127.0.0.1 (a free port) on a thread of its
/// own, for the rest of the process; returns its Simple API root URL.
pub fn start(index: Synthetic) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("a bound address");
    listener.set_nonblocking(true).expect("a non-blocking listener");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = serve(listener, index).await;
        });
    });
    format!("http://{addr}/simple/")
}

/// Serves `index` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, index: Synthetic) -> std::io::Result<()> {
    let index = Arc::new(index);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let index = index.clone();
        async move { answer(&index, &uri, &headers) }
    });
    axum::serve(listener, app).await
}

fn answer(index: &Synthetic, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
    let base =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| format!("http://{h}")).unwrap_or_default();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.pypi.simple"));
    if path == "/simple/" || path == "/simple" {
        return project_list(index, wants_json);
    }
    if let Some(name) = path.strip_prefix("/simple/").and_then(|rest| rest.strip_suffix('/')) {
        let Some(i) = index.number(name) else { return not_found() };
        return project_page(index, i, &base, wants_json);
    }
    if let Some(name) = path.strip_prefix("/pypi/").and_then(|rest| rest.strip_suffix("/json")) {
        let Some(i) = index.number(name) else { return not_found() };
        return legacy_json(index, i, &base);
    }
    if path.starts_with("/files/") || path.starts_with("/packages/") {
        let filename = path.rsplit('/').next().unwrap_or_default();
        let (filename, metadata) = match filename.strip_suffix(".metadata") {
            Some(wheel) => (wheel, true),
            None => (filename, false),
        };
        let Some(file) = index.file(filename) else { return not_found() };
        let body = if metadata { file.metadata } else { file.bytes };
        return ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    }
    not_found()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such thing\n").into_response()
}

fn with_serial(mut response: Response, serial: u64, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert("X-PyPI-Last-Serial", HeaderValue::from(serial));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// The project list, rendered a chunk at a time as the client reads it.
fn project_list(index: &Synthetic, json: bool) -> Response {
    let index = *index;
    let chunks = index.projects.div_ceil(LIST_CHUNK);
    let head = if json {
        format!("{{\"meta\":{{\"api-version\":\"1.1\",\"_last-serial\":{}}},\"projects\":[", index.last_serial())
    } else {
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"></head><body>\n".to_owned()
    };
    let tail = if json { "]}" } else { "</body></html>\n" };
    let body = (0..chunks).map(move |chunk| {
        let mut text = String::new();
        for i in chunk * LIST_CHUNK..((chunk + 1) * LIST_CHUNK).min(index.projects) {
            let name = Synthetic::name(i);
            if json {
                let comma = if i == 0 { "" } else { "," };
                text.push_str(&format!("{comma}{{\"name\":\"{name}\",\"_last-serial\":{}}}", index.serial(i)));
            } else {
                text.push_str(&format!("<a href=\"{name}/\">{name}</a>\n"));
            }
        }
        text
    });
    let parts = std::iter::once(head).chain(body).chain(std::iter::once(tail.to_owned()));
    let stream = futures_util::stream::iter(parts.map(|text| Ok::<_, Infallible>(Bytes::from(text))));
    let content_type = if json { JSON_TYPE } else { "text/html" };
    with_serial(Body::from_stream(stream).into_response(), index.last_serial(), content_type)
}

fn project_page(index: &Synthetic, i: u64, base: &str, json: bool) -> Response {
    let name = Synthetic::name(i);
    let files = index.files(i);
    let body = if json {
        let files: Vec<_> = files
            .iter()
            .map(|f| {
                json!({
                    "filename": f.filename,
                    "url": format!("{base}/files/{}", f.filename),
                    "hashes": {"sha256": sha256_hex(&f.bytes)},
                    "size": f.bytes.len(),
                    "upload-time": upload_time(&f.version),
                    "requires-python": null,
                    "core-metadata": {"sha256": sha256_hex(&f.metadata)},
                    "dist-info-metadata": {"sha256": sha256_hex(&f.metadata)},
                    "yanked": false,
                })
            })
            .collect();
        json!({"meta": {"api-version": "1.1"}, "name": name, "files": files, "versions": index.versions(i)}).to_string()
    } else {
        let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
        for f in &files {
            let metadata = sha256_hex(&f.metadata);
            html.push_str(&format!(
                "<a href=\"{base}/files/{0}#sha256={1}\" data-core-metadata=\"sha256={metadata}\" \
                 data-dist-info-metadata=\"sha256={metadata}\">{0}</a>\n",
                f.filename,
                sha256_hex(&f.bytes)
            ));
        }
        html.push_str("</body></html>\n");
        html
    };
    with_serial(body.into_response(), index.serial(i), if json { JSON_TYPE } else { "text/html" })
}

/// The legacy JSON API, as bandersnatch reads it; file URLs under
/// `/packages/<aa>/<bb>/<digest>/`, as the public index lays them out.
fn legacy_json(index: &Synthetic, i: u64, base: &str) -> Response {
    let name = Synthetic::name(i);
    let files = index.files(i);
    let describe = |f: &SyntheticFile| {
        let digest = sha256_hex(&f.bytes);
        json!({
            "filename": f.filename,
            "url": format!("{base}/packages/{}/{}/{}/{}", &digest[..2], &digest[2..4], &digest[4..], f.filename),
            "digests": {"sha256": digest},
            "size": f.bytes.len(),
            "packagetype": "bdist_wheel",
            "python_version": "py3",
            "requires_python": null,
            "upload_time_iso_8601": upload_time(&f.version),
            "yanked": false,
            "yanked_reason": null,
        })
    };
    let releases: serde_json::Map<String, serde_json::Value> =
        files.iter().map(|f| (f.version.clone(), json!([describe(f)]))).collect();
    let latest = files.last().expect("every project has files");
    let body = json!({
        "info": {"name": name, "version": latest.version, "summary": "", "requires_dist": null, "requires_python": null, "yanked": false},
        "last_serial": index.serial(i),
        "releases": releases,
        "urls": [describe(latest)],
        "vulnerabilities": [],
    });
    with_serial(body.to_string().into_response(), index.serial(i), "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape_name;

    fn module_name(i: u64) -> String {
        escape_name(&Synthetic::name(i))
    }

    #[test]
    fn projects_files_and_serials_follow_the_generations() {
        let index = Synthetic { projects: 1000, generation: 1, changed_every: 100 };
        assert_eq!(index.versions(5), ["1.0", "2.0", "3.0"]);
        assert_eq!(index.serial(5), 6);
        assert_eq!(index.versions(99), ["1.0", "2.0", "3.0", "4.0"]);
        assert_eq!(index.serial(99), 1100);
        assert_eq!(index.file_count(), 3010);
        let file = index.file(&format!("{}-4.0-py3-none-any.whl", module_name(99))).unwrap();
        assert_eq!(file.bytes, index.files(99)[3].bytes);
        assert!(index.file(&format!("{}-4.0-py3-none-any.whl", module_name(98))).is_none());
        assert!(index.file(&format!("{}-1.0-py3-none-any.whl", module_name(1000))).is_none());
        assert_eq!(Synthetic { generation: 0, ..index }.last_serial(), 1000);
    }
}
