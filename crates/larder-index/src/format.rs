//! The serialization formats of Simple API pages and their media types.

/// A Simple API page format (PEP 691).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageFormat {
    /// `application/vnd.pypi.simple.v1+json`.
    Json,
    /// `application/vnd.pypi.simple.v1+html`.
    VersionedHtml,
    /// `text/html` (plain PEP 503).
    Html,
}

impl PageFormat {
    /// Every format, in the order preferred on a tie of client quality
    /// values: JSON, then versioned HTML, then plain HTML.
    pub const ALL: [PageFormat; 3] = [Self::Json, Self::VersionedHtml, Self::Html];

    /// The `Content-Type` this format is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/vnd.pypi.simple.v1+json",
            Self::VersionedHtml => "application/vnd.pypi.simple.v1+html",
            Self::Html => "text/html; charset=utf-8",
        }
    }

    /// The format a media type (without parameters) names, including the
    /// `latest` aliases of PEP 691.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let media_type = media_type.trim_ascii();
        [
            ("application/vnd.pypi.simple.v1+json", Self::Json),
            ("application/vnd.pypi.simple.latest+json", Self::Json),
            ("application/vnd.pypi.simple.v1+html", Self::VersionedHtml),
            ("application/vnd.pypi.simple.latest+html", Self::VersionedHtml),
            ("text/html", Self::Html),
        ]
        .into_iter()
        .find_map(|(name, format)| name.eq_ignore_ascii_case(media_type).then_some(format))
    }

    /// The media type's `type/subtype` split, for wildcard matching.
    pub fn type_and_subtype(self) -> (&'static str, &'static str) {
        match self {
            Self::Json => ("application", "vnd.pypi.simple.v1+json"),
            Self::VersionedHtml => ("application", "vnd.pypi.simple.v1+html"),
            Self::Html => ("text", "html"),
        }
    }

    /// True for the two HTML formats (they share one rendering).
    pub fn is_html(self) -> bool {
        !matches!(self, Self::Json)
    }
}
