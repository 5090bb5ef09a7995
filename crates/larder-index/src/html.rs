//! PEP 503 HTML rendering of Simple API pages.

use std::fmt::Write;

use crate::names::ListedProject;
use crate::simple::{CoreMetadataLink, FileEntry, ProjectList, ProjectListEntry, ProjectPage, Yanked};

/// Renders the project list as PEP 503 HTML.
pub fn render_project_list(list: &ProjectList) -> String {
    let mut out = Vec::with_capacity(64 + list.projects.len() * 48);
    write_project_list(&mut out, list.projects.iter().map(ProjectListEntry::listed)).expect("a Vec takes every write");
    String::from_utf8(out).expect("rendered from strings")
}

/// Writes the project list as PEP 503 HTML, a project at a time (a list
/// of any size, into a compressor or a file).
pub fn write_project_list<'a>(
    out: &mut impl std::io::Write,
    projects: impl Iterator<Item = ListedProject<'a>>,
) -> std::io::Result<()> {
    let mut head = String::new();
    open_head(&mut head, "1.1");
    close_head(&mut head, "Simple index");
    out.write_all(head.as_bytes())?;
    for project in projects {
        writeln!(out, "    <a href=\"{}/\">{}</a><br/>", escape(project.name), escape(project.display_name))?;
    }
    let mut tail = String::new();
    close_document(&mut tail);
    out.write_all(tail.as_bytes())
}

/// Renders a project page as PEP 503 HTML, with the PEP 592, 629, 658, 708,
/// 714, 740 and 792 additions.
pub fn render_project_page(page: &ProjectPage) -> String {
    let mut out = String::with_capacity(256 + page.files.len() * 256);
    open_head(&mut out, page.api_version());
    if let Some(status) = &page.status {
        meta(&mut out, "pypi:project-status", &status.status);
        if let Some(reason) = &status.reason {
            meta(&mut out, "pypi:project-status-reason", reason);
        }
    }
    for url in &page.tracks {
        meta(&mut out, "pypi:tracks", url);
    }
    for url in &page.alternate_locations {
        meta(&mut out, "pypi:alternate-locations", url);
    }
    close_head(&mut out, &format!("Links for {}", page.name));
    for file in &page.files {
        file_anchor(&mut out, file);
    }
    close_document(&mut out);
    out
}

fn file_anchor(out: &mut String, file: &FileEntry) {
    out.push_str("    <a href=\"");
    out.push_str(&escape(&file.url));
    if let Some(sha256) = file.hashes.get("sha256") {
        let _ = write!(out, "#sha256={}", escape(sha256));
    } else if let Some((name, digest)) = file.hashes.iter().next() {
        let _ = write!(out, "#{}={}", escape(name), escape(digest));
    }
    out.push('"');
    if let Some(requires_python) = &file.requires_python {
        attribute(out, "data-requires-python", requires_python);
    }
    if let CoreMetadataLink::Present(hashes) = &file.core_metadata {
        let value = hashes
            .get("sha256")
            .map(|h| format!("sha256={h}"))
            .or_else(|| hashes.iter().next().map(|(name, h)| format!("{name}={h}")))
            .unwrap_or_else(|| "true".to_owned());
        attribute(out, "data-dist-info-metadata", &value);
        attribute(out, "data-core-metadata", &value);
    }
    if let Some(gpg_sig) = file.gpg_sig {
        attribute(out, "data-gpg-sig", if gpg_sig { "true" } else { "false" });
    }
    if let Yanked::Yes(reason) = &file.yanked {
        attribute(out, "data-yanked", reason.as_deref().unwrap_or(""));
    }
    if let Some(provenance) = &file.provenance {
        attribute(out, "data-provenance", provenance);
    }
    let _ = writeln!(out, ">{}</a><br/>", escape(&file.filename));
}

/// Starts the document and its head, with the repository version meta tag;
/// the caller may add more meta tags before [`close_head`].
fn open_head(out: &mut String, api_version: &str) {
    out.push_str("<!DOCTYPE html>\n<html>\n  <head>\n");
    meta(out, "pypi:repository-version", api_version);
}

/// Ends the head with a title and opens the body with the same heading.
fn close_head(out: &mut String, title: &str) {
    let _ = write!(out, "    <title>{0}</title>\n  </head>\n  <body>\n    <h1>{0}</h1>\n", escape(title));
}

fn close_document(out: &mut String) {
    out.push_str("  </body>\n</html>\n");
}

fn meta(out: &mut String, name: &str, content: &str) {
    let _ = writeln!(out, "    <meta name=\"{}\" content=\"{}\">", escape(name), escape(content));
}

fn attribute(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {}=\"{}\"", name, escape(value));
}

/// Escapes text for use in HTML element content and quoted attributes.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out.into()
}
