//! PEP 503 HTML pages (with the PEP 592, 629, 658/714, 708, 740 and 792
//! additions) read into the page model.

use std::borrow::Cow;
use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use super::tags::{Tag, Token, Tokens, decode};
use super::{
    Problem, Url, check_api_version, hash_entry, hash_map, is_hostile_filename, non_empty, project_status, resolve,
    resolve_to_string, versions_of_files,
};
use crate::NormalizedName;
use crate::simple::{CoreMetadataLink, FileEntry, ProjectPage, Yanked};

/// Reads a project page.
pub(super) fn project_page(text: &str, page_url: &Url, name: &NormalizedName) -> Result<ProjectPage, Problem> {
    let document = Document::scan(text)?;
    let base = document.base.as_deref().and_then(|href| resolve(page_url, href)).unwrap_or_else(|| page_url.clone());
    let files: Vec<FileEntry> = document.anchors.iter().filter_map(|anchor| file_entry(anchor, &base)).collect();
    Ok(ProjectPage {
        // PEP 833 froze the HTML format: namespaces are JSON-only.
        namespaces: BTreeMap::new(),
        name: name.clone(),
        versions: versions_of_files(&files, name),
        files,
        last_serial: None,
        tracks: document.meta_urls("pypi:tracks", &base),
        alternate_locations: document.meta_urls("pypi:alternate-locations", &base),
        status: document
            .meta("pypi:project-status")
            .next()
            .and_then(|status| project_status(status, document.meta("pypi:project-status-reason").next())),
    })
}

/// Reads the project list: one anchor per project, its text the name,
/// handed to `on_project` as it is read (no anchor is kept).
pub(super) fn for_each_project(text: &str, mut on_project: impl FnMut(&str, Option<u64>)) -> Result<(), Problem> {
    Document::scan_with(text, |anchor| on_project(anchor.text.trim(), None)).map(drop)
}

/// What a Simple API page says, before it is read into the model.
struct Document<'a> {
    /// The anchors that have an `href`, in document order.
    anchors: Vec<Anchor<'a>>,
    /// The `href` of the first `<base>` that has one, entities decoded.
    base: Option<Cow<'a, str>>,
    /// `(name, content)` of every `<meta>` named `pypi:...`, name lowercased.
    metas: Vec<(String, Cow<'a, str>)>,
}

/// An `<a href>` and its text.
struct Anchor<'a> {
    /// The start tag.
    tag: Tag<'a>,
    /// The href, entities decoded.
    href: Cow<'a, str>,
    /// The text inside the anchor, entities decoded, not yet trimmed.
    text: String,
}

impl<'a> Document<'a> {
    /// Scans `text`. Fails when it cannot be an HTML page at all: it holds
    /// NUL bytes (binary data) or not a single tag (plain text).
    fn scan(text: &'a str) -> Result<Self, Problem> {
        let mut anchors = Vec::new();
        let mut document = Self::scan_with(text, |anchor| anchors.push(anchor))?;
        document.anchors = anchors;
        Ok(document)
    }

    /// Scans `text`, handing each anchor to `on_anchor` as it ends instead
    /// of keeping it (the returned document has none).
    fn scan_with(text: &'a str, mut on_anchor: impl FnMut(Anchor<'a>)) -> Result<Self, Problem> {
        if text.contains('\0') {
            return Err(Problem::malformed("it holds NUL bytes, so it is binary data rather than HTML"));
        }
        let mut document = Self { anchors: Vec::new(), base: None, metas: Vec::new() };
        let mut open: Option<Anchor<'a>> = None;
        let mut saw_tag = false;
        let mut anchors = 0usize;
        let mut emit = |anchor: Option<Anchor<'a>>| {
            if let Some(anchor) = anchor {
                anchors += 1;
                on_anchor(anchor);
            }
        };
        for token in Tokens::new(text) {
            saw_tag |= !matches!(token, Token::Text(_));
            match token {
                Token::Start(tag) if tag.is("a") => {
                    // An `<a>` inside an open one closes it, as in browsers.
                    emit(open.take());
                    open = tag.attribute("href").map(|href| Anchor { tag, href, text: String::new() });
                }
                Token::Start(tag) => document.read_head_tag(&tag),
                Token::End(name) if name.eq_ignore_ascii_case("a") => emit(open.take()),
                Token::End(_) => {}
                Token::Text(text) => {
                    if let Some(anchor) = open.as_mut() {
                        anchor.text.push_str(&decode(text));
                    }
                }
            }
        }
        emit(open);
        if !saw_tag {
            return Err(Problem::malformed("it holds no HTML tag at all"));
        }
        // An index page with nothing to list still says it is one, with a
        // `pypi:` meta tag (PEP 629's repository version, PEP 792's status
        // of a quarantined project); a page with neither links nor such a
        // tag is an error page (a login or maintenance page answered with
        // 200), and must never replace a good page.
        if anchors == 0 && document.metas.is_empty() {
            return Err(Problem::malformed(
                "it has no links and no pypi: meta tag, so it is not an index page (an error page?)",
            ));
        }
        document.check_version()?;
        Ok(document)
    }

    /// Records a `<base href>` (the first one only) or a `<meta name="pypi:...">`.
    fn read_head_tag(&mut self, tag: &Tag<'a>) {
        if tag.is("base") && self.base.is_none() {
            self.base = tag.attribute("href");
        } else if tag.is("meta") {
            let name = tag.attribute("name").map(|name| name.trim().to_ascii_lowercase());
            if let (Some(name), Some(content)) =
                (name.filter(|name| name.starts_with("pypi:")), tag.attribute("content"))
            {
                self.metas.push((name, content));
            }
        }
    }

    /// Fails on a `pypi:repository-version` with another major version.
    fn check_version(&self) -> Result<(), Problem> {
        self.meta("pypi:repository-version").try_for_each(check_api_version)
    }

    /// The contents of the meta tags named `name`, in document order.
    fn meta<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.metas.iter().filter(move |(meta, _)| meta == name).map(|(_, content)| content.as_ref())
    }

    /// The contents of the meta tags named `name`, resolved against `base`;
    /// contents that are not URLs are skipped.
    fn meta_urls(&self, name: &str, base: &Url) -> Vec<String> {
        self.meta(name).filter_map(|url| resolve_to_string(base, url.trim())).collect()
    }
}

/// The file an anchor links to; `None` when its URL does not resolve or its
/// filename is hostile.
fn file_entry(anchor: &Anchor<'_>, base: &Url) -> Option<FileEntry> {
    let mut url = resolve(base, &anchor.href)?;
    let hashes = url.fragment().map(fragment_hashes).unwrap_or_default();
    url.set_fragment(None);
    let filename = non_empty(&anchor.text).unwrap_or_else(|| last_segment(&url));
    if is_hostile_filename(&filename) {
        return None;
    }
    let tag = &anchor.tag;
    Some(FileEntry {
        filename,
        url: url.into(),
        hashes,
        requires_python: tag.attribute("data-requires-python").and_then(|value| non_empty(&value)),
        core_metadata: core_metadata(tag),
        gpg_sig: tag.attribute("data-gpg-sig").and_then(|value| flag(&value)),
        yanked: tag.attribute("data-yanked").map_or(Yanked::No, |reason| Yanked::yes_with(&reason)),
        size: None,
        upload_time: None,
        provenance: tag.attribute("data-provenance").and_then(|url| resolve_to_string(base, url.trim())),
    })
}

/// The hashes in a link fragment: `name=hexdigest` pairs joined by `&`.
fn fragment_hashes(fragment: &str) -> BTreeMap<String, String> {
    hash_map(fragment.split('&').filter_map(|pair| pair.split_once('=')))
}

/// The percent-decoded last path segment of `url` (empty when there is
/// none).
fn last_segment(url: &Url) -> String {
    let segment = url.path_segments().and_then(|mut segments| segments.next_back()).unwrap_or_default();
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// PEP 658/714 metadata: `data-core-metadata`, else the legacy
/// `data-dist-info-metadata`. `true` (or any value that is not a hash) means
/// present without hashes, `name=hex` present with that hash, `false` or no
/// attribute absent.
fn core_metadata(tag: &Tag<'_>) -> CoreMetadataLink {
    let Some(value) = tag.attribute("data-core-metadata").or_else(|| tag.attribute("data-dist-info-metadata")) else {
        return CoreMetadataLink::Absent;
    };
    let value = value.trim();
    if flag(value) == Some(false) {
        return CoreMetadataLink::Absent;
    }
    let hash = value.split_once('=').and_then(|(name, digest)| hash_entry(name, digest));
    CoreMetadataLink::Present(hash.into_iter().collect())
}

/// `true` or `false`, ASCII case-insensitively and ignoring surrounding
/// whitespace.
fn flag(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
