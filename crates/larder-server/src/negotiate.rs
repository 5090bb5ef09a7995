//! PEP 691 content negotiation: picks the page format from `Accept`.

use larder_index::PageFormat;

/// Picks the format to serve for an `Accept` header value (`None` when the
/// request has none, which means `*/*`).
///
/// Each format gets the quality of the most specific media range that
/// matches it (exact type, then `type/*`, then `*/*`); `q=0` refuses. The
/// highest quality wins; ties go to JSON, then versioned HTML, then plain
/// HTML. Returns `None` when nothing acceptable is offered (answer 406).
pub fn negotiate(accept: Option<&str>) -> Option<PageFormat> {
    let accept = accept.map(str::trim).filter(|a| !a.is_empty()).unwrap_or("*/*");
    let ranges: Vec<MediaRange<'_>> = accept.split(',').filter_map(MediaRange::parse).collect();
    let mut best: Option<(f32, PageFormat)> = None;
    for format in PageFormat::ALL {
        let quality = ranges
            .iter()
            .filter_map(|range| range.specificity(format).map(|s| (s, range.quality)))
            .max_by_key(|(specificity, _)| *specificity)
            .map_or(0.0, |(_, quality)| quality);
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    media_type: &'a str,
    quality: f32,
}

impl<'a> MediaRange<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let media_type = parts.next()?.trim();
        if media_type.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                quality = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
            }
        }
        Some(Self { media_type, quality })
    }

    /// How specifically this range matches `format`: 3 for the exact type
    /// (or its `latest` alias), 2 for `type/*`, 1 for `*/*`; `None` when it
    /// does not match.
    fn specificity(&self, format: PageFormat) -> Option<u8> {
        if PageFormat::from_media_type(self.media_type) == Some(format) {
            return Some(3);
        }
        let (kind, subtype) = self.media_type.split_once('/')?;
        let (format_kind, _) = format.type_and_subtype();
        match (kind.trim(), subtype.trim()) {
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
    fn real_clients_get_json() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        let uv = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
        assert_eq!(negotiate(Some(pip)), Some(Json));
        assert_eq!(negotiate(Some(uv)), Some(Json));
    }

    #[test]
    fn quality_values_decide_and_ties_prefer_json() {
        assert_eq!(negotiate(None), Some(Json));
        assert_eq!(negotiate(Some("")), Some(Json));
        assert_eq!(negotiate(Some("*/*")), Some(Json));
        assert_eq!(negotiate(Some("text/html")), Some(Html));
        assert_eq!(negotiate(Some("text/*")), Some(Html));
        assert_eq!(negotiate(Some("application/*")), Some(Json));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+html")), Some(VersionedHtml));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.latest+json")), Some(Json));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html;q=0.9")), Some(Html));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0, */*;q=0.5")), Some(VersionedHtml));
        assert_eq!(negotiate(Some("*/*;q=0.5, application/*;q=0")), Some(Html));
    }

    #[test]
    fn nothing_acceptable_is_none() {
        assert_eq!(negotiate(Some("image/png")), None);
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0")), None);
        assert_eq!(negotiate(Some("text/html;q=2")), None);
    }
}
