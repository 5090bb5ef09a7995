//! A bounded HTML tag scanner: just enough of the HTML tokenizer to read
//! Simple API pages (`<a href>` with its text, `<meta>`, `<base>`), without
//! a document tree.
//!
//! It follows the HTML tokenizer where it matters for those pages: tag and
//! attribute names in any case; double-quoted, single-quoted, unquoted and
//! bare attribute values; the first of two same-named attributes wins;
//! comments, doctypes and processing instructions are skipped; `<script>` and
//! `<style>` content is not markup; a tag or comment left open at the end of
//! the body is dropped and ends the body. Every byte is looked at a bounded
//! number of times, so scanning is linear in the body, and it never panics.

use std::borrow::Cow;

/// Attributes kept per tag; any further ones are scanned and dropped, so a
/// hostile tag cannot make the scanner hold more than this.
const MAX_ATTRIBUTES: usize = 64;

/// Elements whose content is raw text, not markup.
const RAW_TEXT_ELEMENTS: [&str; 2] = ["script", "style"];

/// One piece of an HTML document.
pub(super) enum Token<'a> {
    /// A start tag.
    Start(Tag<'a>),
    /// An end tag, by name as written.
    End(&'a str),
    /// Text between tags, with its entities not yet decoded.
    Text(&'a str),
}

/// A start tag: its name and attributes, as written.
pub(super) struct Tag<'a> {
    /// The tag name as written.
    name: &'a str,
    /// `(name, raw value)` pairs in document order; a bare attribute has an
    /// empty value.
    attributes: Vec<(&'a str, &'a str)>,
}

impl<'a> Tag<'a> {
    /// True when the tag is named `name` (ASCII case-insensitively).
    pub(super) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value of the first attribute named `name` (ASCII
    /// case-insensitively), entities decoded; `Some("")` for a bare
    /// attribute, `None` when the tag has no such attribute.
    pub(super) fn attribute(&self, name: &str) -> Option<Cow<'a, str>> {
        self.attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(name))
            .map(|(_, value)| decode(value))
    }
}

/// Decodes named and numeric character references (`&amp;`, `&#38;`,
/// `&#x26;`) in text or an attribute value.
pub(super) fn decode(text: &str) -> Cow<'_, str> {
    html_escape::decode_html_entities(text)
}

/// The tokens of an HTML document, in order.
pub(super) struct Tokens<'a> {
    /// The whole document.
    text: &'a str,
    /// Where the next token starts.
    pos: usize,
    /// Set after a start tag whose content is raw text: the element whose
    /// end tag ends it.
    raw_text: Option<&'static str>,
}

impl<'a> Tokens<'a> {
    /// Scans `text` from its start.
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, pos: 0, raw_text: None }
    }

    /// Reads the markup that starts with the `<` at `self.pos`. Returns
    /// `None` when it is not a token for the caller (a comment, a doctype, or
    /// a tag cut off by the end of the body); always moves forward.
    fn markup(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        let after = self.pos + 1;
        match bytes.get(after) {
            // `<!-->` and `<!--->` are empty comments, so look from the dashes.
            Some(b'!') if bytes[after..].starts_with(b"!--") => self.skip_past(after + 1, "-->"),
            Some(b'!' | b'?') => self.skip_past(after, ">"),
            Some(b'/') => match bytes.get(after + 1) {
                Some(b) if b.is_ascii_alphabetic() => return self.tag(after + 1).map(|tag| Token::End(tag.name)),
                Some(b'>') => self.pos = after + 2,
                _ => self.skip_past(after, ">"),
            },
            Some(b) if b.is_ascii_alphabetic() => {
                let tag = self.tag(after)?;
                self.raw_text = RAW_TEXT_ELEMENTS.into_iter().find(|element| tag.is(element));
                return Some(Token::Start(tag));
            }
            _ => {
                self.pos = after;
                return Some(Token::Text("<"));
            }
        }
        None
    }

    /// Moves past the first `needle` at or after `from`, or to the end.
    fn skip_past(&mut self, from: usize, needle: &str) {
        let found = self.text.get(from..).and_then(|rest| rest.find(needle));
        self.pos = found.map_or(self.text.len(), |at| from + at + needle.len());
    }

    /// Reads the tag whose name starts at `start` and moves past it; at the
    /// end of the body the tag is dropped and the scan ends.
    fn tag(&mut self, start: usize) -> Option<Tag<'a>> {
        let scanned = scan_tag(self.text, start);
        self.pos = scanned.as_ref().map_or(self.text.len(), |(_, end)| *end);
        scanned.map(|(tag, _)| tag)
    }

    /// After a raw-text start tag, moves to its end tag (or to the end).
    fn skip_raw_text(&mut self) {
        if let Some(element) = self.raw_text.take() {
            let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
            self.pos = find_end_tag(rest, element).map_or(self.text.len(), |at| self.pos + at);
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            self.skip_raw_text();
            let rest = self.text.get(self.pos..).filter(|rest| !rest.is_empty())?;
            match rest.find('<') {
                Some(0) => {
                    if let Some(token) = self.markup() {
                        return Some(token);
                    }
                }
                Some(at) => {
                    self.pos += at;
                    return rest.get(..at).map(Token::Text);
                }
                None => {
                    self.pos = self.text.len();
                    return Some(Token::Text(rest));
                }
            }
        }
    }
}

/// Scans a tag whose name starts at `start`: its name, its attributes, and
/// the index just past its `>`. `None` when the body ends first.
fn scan_tag(text: &str, start: usize) -> Option<(Tag<'_>, usize)> {
    let bytes = text.as_bytes();
    let mut at = scan_while(bytes, start, |b| !is_space(b) && !matches!(b, b'/' | b'>'));
    let mut tag = Tag { name: text.get(start..at)?, attributes: Vec::new() };
    loop {
        at = scan_while(bytes, at, |b| is_space(b) || b == b'/');
        if *bytes.get(at)? == b'>' {
            return Some((tag, at + 1));
        }
        let (attribute, end) = scan_attribute(text, at)?;
        if tag.attributes.len() < MAX_ATTRIBUTES {
            tag.attributes.push(attribute);
        }
        at = end;
    }
}

/// Scans one attribute starting at `start` (not whitespace, `/` or `>`):
/// its name and raw value, and where scanning goes on. `None` when the
/// body ends inside the value.
fn scan_attribute(text: &str, start: usize) -> Option<((&str, &str), usize)> {
    let bytes = text.as_bytes();
    // The first character belongs to the name even when it is `=`.
    let name_end = scan_while(bytes, start + 1, |b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='));
    let name = text.get(start..name_end)?;
    let at = scan_while(bytes, name_end, is_space);
    if bytes.get(at) != Some(&b'=') {
        return Some(((name, ""), at));
    }
    let at = scan_while(bytes, at + 1, is_space);
    match *bytes.get(at)? {
        quote @ (b'"' | b'\'') => {
            let end = at + 1 + bytes.get(at + 1..)?.iter().position(|&b| b == quote)?;
            Some(((name, text.get(at + 1..end)?), end + 1))
        }
        _ => {
            let end = scan_while(bytes, at, |b| !is_space(b) && b != b'>');
            Some(((name, text.get(at..end)?), end))
        }
    }
}

/// The index of the first byte at or after `from` that fails `keep`, or the
/// length of `bytes`.
fn scan_while(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    from + rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len())
}

/// Where `</element` first occurs in `bytes`, ASCII case-insensitively.
fn find_end_tag(bytes: &[u8], element: &str) -> Option<usize> {
    bytes
        .windows(element.len() + 2)
        .position(|window| window.starts_with(b"</") && window[2..].eq_ignore_ascii_case(element.as_bytes()))
}

/// HTML's ASCII whitespace.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C')
}
