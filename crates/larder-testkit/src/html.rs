//! Just enough HTML parsing to read PEP 503 pages: start tags with their
//! attributes (raw and unescaped) and the text of `<a>` elements.

/// One start tag.
#[derive(Clone, Debug)]
pub struct Tag {
    /// Lowercased tag name.
    pub name: String,
    /// Attributes in order: lowercased name, value with entities decoded.
    pub attrs: Vec<(String, String)>,
    /// Attributes in order: lowercased name, value exactly as written.
    pub raw_attrs: Vec<(String, String)>,
    /// For `<a>`: the element's text up to `</a>`, entities decoded.
    pub text: String,
}

impl Tag {
    /// The decoded value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of attribute `name` as written in the document.
    pub fn raw_attr(&self, name: &str) -> Option<&str> {
        self.raw_attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// All start tags named `name` (case-insensitive) in `html`.
pub fn tags(html: &str, name: &str) -> Vec<Tag> {
    let name = name.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off + 1;
        i = start;
        let tag_name_end = html[start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map(|o| start + o)
            .unwrap_or(html.len());
        let tag_name = html[start..tag_name_end].to_ascii_lowercase();
        if tag_name.is_empty() || tag_name.starts_with('!') || tag_name.starts_with('/') {
            continue;
        }
        // Attributes up to the closing '>' (quotes respected).
        let mut j = tag_name_end;
        let mut raw_attrs = Vec::new();
        loop {
            while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] == b'>' {
                break;
            }
            let an_start = j;
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && !matches!(bytes[j], b'=' | b'>' | b'/') {
                j += 1;
            }
            let attr_name = html[an_start..j].to_ascii_lowercase();
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let mut value = String::new();
            if j < bytes.len() && bytes[j] == b'=' {
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                    let quote = bytes[j];
                    let v_start = j + 1;
                    j = v_start;
                    while j < bytes.len() && bytes[j] != quote {
                        j += 1;
                    }
                    value = html[v_start..j.min(html.len())].to_owned();
                    j += 1;
                } else {
                    let v_start = j;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    value = html[v_start..j].to_owned();
                }
            }
            if !attr_name.is_empty() {
                raw_attrs.push((attr_name, value));
            }
        }
        let after = (j + 1).min(html.len());
        i = after;
        if tag_name != name {
            continue;
        }
        let text = if name == "a" {
            let lower = html[after..].to_ascii_lowercase();
            let end = lower.find("</a").map(|o| after + o).unwrap_or(html.len());
            unescape(html[after..end].trim())
        } else {
            String::new()
        };
        let attrs = raw_attrs.iter().map(|(n, v)| (n.clone(), unescape(v))).collect();
        out.push(Tag { name: tag_name, attrs, raw_attrs, text });
    }
    out
}

/// Decodes the character references HTML pages use (`&lt;`, `&gt;`, `&amp;`,
/// `&quot;`, `&apos;`, and numeric ones).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_anchors_and_meta() {
        let html = "<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.1\">\
            </head><body><a href=\"../../f/x.whl#sha256=ab\" data-requires-python=\"&gt;=3.8,&lt;4\" \
            data-core-metadata=\"sha256=cd\">x.whl</a><br/><A HREF='y/'>Y &amp; Z</A></body></html>";
        let a = tags(html, "a");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].attr("href"), Some("../../f/x.whl#sha256=ab"));
        assert_eq!(a[0].attr("data-requires-python"), Some(">=3.8,<4"));
        assert_eq!(a[0].raw_attr("data-requires-python"), Some("&gt;=3.8,&lt;4"));
        assert_eq!(a[0].text, "x.whl");
        assert_eq!(a[1].attr("href"), Some("y/"));
        assert_eq!(a[1].text, "Y & Z");
        let m = tags(html, "meta");
        assert_eq!(m[0].attr("content"), Some("1.1"));
    }
}
