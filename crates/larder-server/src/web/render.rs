//! The HTML of the web pages. Every value that comes from a project, an
//! upstream or a request goes through [`escape`] (or is a URL-encoded
//! query value).

use std::fmt::Write;

use larder_index::html::escape;
use larder_index::{CoreMetadata, DistFilename, FileEntry, NormalizedName, ProjectPage, SearchHits, Version, Yanked};

use super::Place;

/// Label and value pairs shown as an index's statistics.
#[derive(Debug, Default)]
pub struct Figures(Vec<(&'static str, String)>);

impl Figures {
    /// Adds a figure.
    pub fn push(&mut self, label: &'static str, value: String) {
        self.0.push((label, value));
    }
}

/// What a project page shows.
pub(super) struct ProjectView<'a> {
    pub name: &'a NormalizedName,
    pub display_name: &'a str,
    pub page: &'a ProjectPage,
    pub version: &'a str,
}

/// A size in bytes for people (`1.4 MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{size:.1} {}", UNITS[unit]) }
}

fn open(out: &mut String, title: &str, home: &str, index: Option<&str>) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · larder</title>\n<link rel=\"stylesheet\" href=\"/static/larder.css\">\n</head>\n<body>\n\
         <header><a href=\"{}\">larder</a>{}</header>\n<main>\n",
        escape(title),
        escape(home),
        index.map(|i| format!(" · index {}", escape(i))).unwrap_or_default(),
    );
}

fn close(out: &mut String) {
    out.push_str("</main>\n</body>\n</html>\n");
}

fn search_form(out: &mut String, action: &str, query: &str) {
    let _ = writeln!(
        out,
        "<form class=\"search\" action=\"{}\" method=\"get\" role=\"search\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"Search projects by name\" \
         aria-label=\"Project name\"><button type=\"submit\">Search</button></form>",
        escape(action),
        escape(query)
    );
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An index's page: the search form, the results, how to use the index,
/// its figures.
pub(super) fn index_page(
    place: &Place,
    query: Option<&str>,
    hits: Option<&SearchHits<'_>>,
    figures: &Figures,
) -> String {
    let mut out = String::with_capacity(8192);
    let title = place.named.as_deref().unwrap_or("Package index");
    open(&mut out, title, &place.base, place.named.as_deref());
    let _ = writeln!(out, "<h1>{}</h1>", escape(title));
    search_form(&mut out, &place.home_url(), query.unwrap_or(""));
    if let (Some(query), Some(hits)) = (query, hits) {
        let shown = hits.projects.len();
        let _ = writeln!(
            out,
            "<p class=\"summary\">{} project{} match <q>{}</q>{}.</p>",
            hits.total,
            if hits.total == 1 { "" } else { "s" },
            escape(query),
            if shown < hits.total { format!("; the first {shown} are shown") } else { String::new() }
        );
        out.push_str("<ul class=\"results\">\n");
        for project in &hits.projects {
            let _ = writeln!(
                out,
                "<li><a href=\"{}pypi/{}/\">{}</a></li>",
                escape(&place.home_url()),
                escape(project.name),
                escape(project.display_name)
            );
        }
        out.push_str("</ul>\n");
    }
    let simple = place.simple_url();
    let _ = write!(
        out,
        "<h2>Install from this index</h2>\n<pre><code>pip install --index-url {0} PROJECT\n\
         uv pip install --index-url {0} PROJECT</code></pre>\n\
         <p>To make it the default:</p>\n<pre><code>pip config set global.index-url {0}\n\
         export UV_INDEX_URL={0}</code></pre>\n",
        escape(&simple)
    );
    out.push_str("<h2>Statistics</h2>\n<dl class=\"stats\">\n");
    for (label, value) in &figures.0 {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(value));
    }
    out.push_str("</dl>\n");
    close(&mut out);
    out
}

/// The newest version of a page that is not a pre-release, or else the
/// newest of all (by PEP 440; the page's last when none parses).
pub(super) fn latest_version(page: &ProjectPage) -> Option<String> {
    let parsed: Vec<(Version, &String)> = page.versions.iter().filter_map(|v| Some((v.parse().ok()?, v))).collect();
    parsed
        .iter()
        .filter(|(v, _)| !v.any_prerelease())
        .max_by(|a, b| a.0.cmp(&b.0))
        .or_else(|| parsed.iter().max_by(|a, b| a.0.cmp(&b.0)))
        .map(|(_, v)| (*v).clone())
        .or_else(|| page.versions.last().cloned())
}

/// The files of one version (compared as PEP 440 versions when both
/// parse, as text otherwise).
pub(super) fn files_of<'a>(page: &'a ProjectPage, name: &NormalizedName, version: &str) -> Vec<&'a FileEntry> {
    let wanted: Option<Version> = version.parse().ok();
    page.files
        .iter()
        .filter(|file| {
            let Ok(dist) = DistFilename::parse_for(&file.filename, name) else { return false };
            let of = dist.version().to_string();
            match (&wanted, of.parse::<Version>()) {
                (Some(wanted), Ok(of)) => *wanted == of,
                _ => of == version,
            }
        })
        .collect()
}

/// A project's page: summary, install commands, the version's files and
/// requirements, every version.
pub(super) fn project_page(
    place: &Place,
    view: &ProjectView<'_>,
    files: &[&FileEntry],
    stored: &[bool],
    metadata: Option<&CoreMetadata>,
) -> String {
    let mut out = String::with_capacity(16384);
    open(&mut out, view.display_name, &place.base, place.named.as_deref());
    search_form(&mut out, &place.home_url(), "");
    let _ =
        writeln!(out, "<h1>{} <span class=\"muted\">{}</span></h1>", escape(view.display_name), escape(view.version));
    match metadata.and_then(|m| m.summary.as_deref()) {
        Some(summary) => {
            let _ = writeln!(out, "<p class=\"project-summary\">{}</p>", escape(summary));
        }
        None => out.push_str("<p class=\"muted\">No summary (core metadata not available).</p>\n"),
    }
    let pin = if view.version.is_empty() { String::new() } else { format!("=={}", view.version) };
    let _ = write!(
        out,
        "<h2>Install</h2>\n<pre><code>pip install --index-url {0} {1}{2}\nuv pip install --index-url {0} {1}{2}</code></pre>\n",
        escape(&place.simple_url()),
        escape(view.name.as_str()),
        escape(&pin)
    );
    if let Some(metadata) = metadata {
        out.push_str("<h2>Requirements</h2>\n");
        if let Some(python) = &metadata.requires_python {
            let _ = writeln!(out, "<p>Python {}</p>", escape(python));
        }
        if metadata.requires_dist.is_empty() {
            out.push_str("<p class=\"muted\">No dependencies.</p>\n");
        } else {
            out.push_str("<ul class=\"requires\">\n");
            for requirement in &metadata.requires_dist {
                let _ = writeln!(out, "<li><code>{}</code></li>", escape(requirement));
            }
            out.push_str("</ul>\n");
        }
    }
    files_table(&mut out, files, stored);
    out.push_str("<h2>Versions</h2>\n<ul class=\"versions\">\n");
    for version in view.page.versions.iter().rev() {
        let class = if version == view.version { " class=\"current\"" } else { "" };
        let _ = writeln!(out, "<li{class}><a href=\"?version={}\">{}</a></li>", encode(version), escape(version));
    }
    out.push_str("</ul>\n");
    close(&mut out);
    out
}

fn files_table(out: &mut String, files: &[&FileEntry], stored: &[bool]) {
    out.push_str("<h2>Files</h2>\n");
    if files.is_empty() {
        out.push_str("<p class=\"muted\">No files for this version.</p>\n");
        return;
    }
    out.push_str(
        "<div class=\"table\"><table class=\"files\">\n<thead><tr><th>File</th><th>Size</th>\
         <th class=\"optional\">Uploaded</th><th>Stored here</th><th class=\"optional\">SHA-256</th></tr></thead>\n<tbody>\n",
    );
    for (file, stored) in files.iter().zip(stored) {
        let yanked = match &file.yanked {
            Yanked::No => String::new(),
            Yanked::Yes(None) => "<br><span class=\"yanked\">yanked</span>".to_owned(),
            Yanked::Yes(Some(reason)) => format!("<br><span class=\"yanked\">yanked: {}</span>", escape(reason)),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"file\"><a href=\"{}\">{}</a>{yanked}</td><td>{}</td><td class=\"optional\">{}</td>\
             <td>{}</td><td class=\"hash optional\"><code>{}</code></td></tr>",
            escape(&file.url),
            escape(&file.filename),
            file.size.map(human_size).unwrap_or_default(),
            escape(file.upload_time.as_ref().map(|t| t.as_str()).unwrap_or("")),
            if *stored { "yes" } else { "no" },
            escape(file.hashes.get("sha256").map(String::as_str).unwrap_or("")),
        );
    }
    out.push_str("</tbody></table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_400_000), "1.4 MB");
    }
}
