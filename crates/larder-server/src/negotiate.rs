//! PEP 691 content negotiation: picks the page format from `Accept`.

use larder_index::PageFormat;

/// Picks the format to serve for an `Accept` header value, as the public
/// index does.
///
/// Each format gets the quality of the most specific media range that
/// matches it (exact type, then `type/*`, then `*/*`); `q=0` refuses. The
/// highest quality wins. On a tie, a format the client named explicitly
/// beats one it reached through a wildcard; between named formats JSON
/// wins, then versioned HTML, then plain HTML, and between formats reached
/// through a wildcard plain HTML wins, then JSON, then versioned HTML. So no
/// header, `*/*` and `text/*` get `text/html` (older tools such as
/// setuptools' package index and buildout rely on it), `application/*`
/// gets JSON, and a header that names nothing this index serves (say
/// `application/json`) gets `text/html` too rather than a 406.
pub fn negotiate(accept: Option<&str>) -> PageFormat {
    // Header values are ASCII and their optional whitespace spaces and
    // tabs: trimming here is ASCII trimming, which is much cheaper.
    let accept = accept.map(str::trim_ascii).filter(|a| !a.is_empty()).unwrap_or("*/*");
    // Per format (in the order of `PageFormat::ALL`): the specificity and
    // quality of the most specific range that matches it (the last of
    // equals).
    let mut matched: [Option<(u8, f32)>; 3] = [None; 3];
    for range in accept.split(',').filter_map(MediaRange::parse) {
        let exact = PageFormat::from_media_type(range.media_type);
        for (slot, format) in matched.iter_mut().zip(PageFormat::ALL) {
            if let Some(specificity) = range.specificity(format, exact)
                && slot.is_none_or(|(best, _)| specificity >= best)
            {
                *slot = Some((specificity, range.quality));
            }
        }
    }
    let mut best: Option<((f32, bool, u8), PageFormat)> = None;
    for (slot, format) in matched.into_iter().zip(PageFormat::ALL) {
        let Some((specificity, quality)) = slot else {
            continue;
        };
        let explicit = specificity == EXACT;
        let key = (quality, explicit, tie_rank(format, explicit));
        if quality > 0.0 && best.is_none_or(|(best_key, _)| key > best_key) {
            best = Some((key, format));
        }
    }
    best.map_or(PageFormat::Html, |(_, format)| format)
}

/// True when an `Accept-Encoding` header value accepts gzip: named
/// (`gzip`, `x-gzip`) with a quality above 0, or through `*` when gzip is
/// not named.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let codings: Vec<MediaRange<'_>> = accept_encoding.unwrap_or("").split(',').filter_map(MediaRange::parse).collect();
    let quality = |names: &[&str]| {
        codings.iter().find(|c| names.iter().any(|n| c.media_type.eq_ignore_ascii_case(n))).map(|c| c.quality)
    };
    quality(&["gzip", "x-gzip"]).or_else(|| quality(&["*"])).is_some_and(|q| q > 0.0)
}

/// The specificity of a media range naming the format itself.
const EXACT: u8 = 3;

/// Rank on a tie of quality (higher wins): see [`negotiate`].
fn tie_rank(format: PageFormat, explicit: bool) -> u8 {
    match (format, explicit) {
        (PageFormat::Json, true) | (PageFormat::Html, false) => 3,
        (PageFormat::VersionedHtml, true) | (PageFormat::Json, false) => 2,
        (PageFormat::Html, true) | (PageFormat::VersionedHtml, false) => 1,
    }
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    media_type: &'a str,
    quality: f32,
}

impl<'a> MediaRange<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let media_type = parts.next()?.trim_ascii();
        if media_type.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim_ascii().eq_ignore_ascii_case("q")
            {
                quality = value.trim_ascii().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
            }
        }
        Some(Self { media_type, quality })
    }

    /// How specifically this range (which names the format `exact`, if
    /// any) matches `format`: 3 for the exact type (or its `latest` alias),
    /// 2 for `type/*`, 1 for `*/*`; `None` when it does not match.
    fn specificity(&self, format: PageFormat, exact: Option<PageFormat>) -> Option<u8> {
        if exact == Some(format) {
            return Some(EXACT);
        }
        let (kind, subtype) = self.media_type.split_once('/')?;
        let (format_kind, _) = format.type_and_subtype();
        match (kind.trim_ascii(), subtype.trim_ascii()) {
            ("*", "*") => Some(1),
            (kind, "*") if kind.eq_ignore_ascii_case(format_kind) => Some(2),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PageFormat::*;

    #[test]
    fn gzip_is_accepted_when_named_or_through_a_wildcard() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("gzip;q=0, *")));
        assert!(!accepts_gzip(Some("br, zstd")));
    }

    #[test]
    fn real_clients_get_json() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        let uv = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
        assert_eq!(negotiate(Some(pip)), Json);
        assert_eq!(negotiate(Some(uv)), Json);
    }

    #[test]
    fn quality_values_decide_and_named_types_beat_wildcards() {
        assert_eq!(negotiate(Some("text/html")), Html);
        assert_eq!(negotiate(Some("application/*")), Json);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+html")), VersionedHtml);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.latest+json")), Json);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html;q=0.9")), Html);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0, */*;q=0.5")), Html);
        assert_eq!(negotiate(Some("*/*;q=0.5, application/*;q=0")), Html);
        assert_eq!(negotiate(Some("*/*, application/vnd.pypi.simple.v1+json")), Json);
        assert_eq!(negotiate(Some("text/html;q=0.5, application/vnd.pypi.simple.v1+html;q=0.5")), VersionedHtml);
    }

    #[test]
    fn no_header_and_catch_alls_get_text_html_like_the_public_index() {
        assert_eq!(negotiate(None), Html);
        assert_eq!(negotiate(Some("")), Html);
        assert_eq!(negotiate(Some("*/*")), Html);
        assert_eq!(negotiate(Some("text/*")), Html);
    }

    #[test]
    fn only_unserved_types_get_text_html_not_a_refusal() {
        assert_eq!(negotiate(Some("application/json")), Html);
        assert_eq!(negotiate(Some("image/png")), Html);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0")), Html);
        assert_eq!(negotiate(Some("text/html;q=2")), Html);
    }
}
