//! `Range` header values (RFC 9110 14.2) for a file of known size: one
//! byte range, the whole file, or nothing satisfiable. Pure parsing, so the
//! fuzz target `range_header` runs it alone.

use std::ops::RangeInclusive;

/// What a `Range` header asks of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file: no range, one that cannot be read, or several
    /// ranges (RFC 9110 lets a server answer those with the whole file).
    Full,
    /// One range, within the file.
    Partial(RangeInclusive<u64>),
    /// Valid syntax that no byte of the file satisfies: 416.
    Unsatisfiable,
}

/// Reads a `Range` value for a file of `size` bytes.
pub fn parse_range(range: &str, size: u64) -> RangeRequest {
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        // The parser refuses a zero-length suffix (`bytes=-0`), which is
        // valid syntax that no byte satisfies (RFC 9110 14.1.2): 416, not
        // the whole file.
        return if only_empty_suffixes(range) { RangeRequest::Unsatisfiable } else { RangeRequest::Full };
    };
    if size == 0 {
        // No byte range fits an empty file (and the crate's validation
        // would subtract one from the size).
        return RangeRequest::Unsatisfiable;
    }
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => RangeRequest::Partial(ranges[0].clone()),
        Ok(_) => RangeRequest::Full,
        Err(_) => RangeRequest::Unsatisfiable,
    }
}

/// Whether a `Range` value is `bytes=` followed only by `-0` specs.
fn only_empty_suffixes(range: &str) -> bool {
    range.strip_prefix("bytes=").is_some_and(|set| {
        set.split(',')
            .all(|spec| spec.trim().strip_prefix('-').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b == b'0')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_several_and_unsatisfiable_ones() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Partial(0..=9));
        assert_eq!(parse_range("bytes=-5", 100), RangeRequest::Partial(95..=99));
        assert_eq!(parse_range("bytes=0-1, 5-6", 100), RangeRequest::Full);
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0, -00", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("lines=1-2", 100), RangeRequest::Full);
        assert_eq!(parse_range("bytes=-", 100), RangeRequest::Full);
    }

    /// Found by the `range_header` fuzz target: http-range-header's
    /// validation subtracts one from the size, which overflows on an
    /// empty file.
    #[test]
    fn a_range_of_an_empty_file_is_unsatisfiable() {
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), RangeRequest::Unsatisfiable);
    }
}
