//! JSON read one level at a time.
//!
//! A [`Shallow`] value is what one JSON value is at its top level: the
//! members of an object and the items of an array stay unparsed text
//! ([`RawValue`]s borrowed from the body) until they are asked for, and
//! strings are borrowed unless they hold escapes. Reading a page this way
//! never builds a tree of the whole body: a 3,000-file page costs a list of
//! 3,000 slices and one file object at a time, where a `serde_json::Value`
//! of it takes about six times the body's size.
//!
//! The body is checked as a whole when its top level is read, so the parts
//! read later are known to be valid JSON. Nothing here recurses into the
//! body, so no depth of nesting can exhaust the stack.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The top level of one JSON value.
#[derive(Debug)]
pub(super) enum Shallow<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number that is a non-negative integer (fitting in 64 bits).
    Unsigned(u64),
    /// Any other number.
    OtherNumber,
    /// A string.
    String(Cow<'a, str>),
    /// An array: its items, unparsed.
    Array(Vec<&'a RawValue>),
    /// An object: its members, values unparsed, in document order.
    Object(Members<'a>),
}

/// The members of a JSON object, values unparsed. When a key appears more
/// than once, the last one counts (as in `serde_json::Value`).
#[derive(Debug, Default)]
pub(super) struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Shallow<'a> {
    /// Reads the top level of a whole body; fails when it is not JSON.
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Reads the top level of a part of a body read before.
    pub(super) fn of(raw: &'a RawValue) -> Self {
        // The text was checked when the value around it was read, and this
        // reads one level only: it cannot fail. Should it, the part counts
        // as missing rather than failing the page.
        serde_json::from_str(raw.get()).unwrap_or(Self::Null)
    }

    /// What kind of JSON value this is, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Unsigned(_) | Self::OtherNumber => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The boolean, when this is one.
    pub(super) fn into_bool(self) -> Option<bool> {
        match self {
            Self::Bool(value) => Some(value),
            _ => None,
        }
    }

    /// The number, when this is a non-negative integer.
    pub(super) fn into_u64(self) -> Option<u64> {
        match self {
            Self::Unsigned(value) => Some(value),
            _ => None,
        }
    }

    /// The number, when this is a non-negative integer or a string of
    /// decimal digits (the public index writes `_last-serial` as one).
    pub(super) fn into_serial(self) -> Option<u64> {
        match self {
            Self::Unsigned(value) => Some(value),
            Self::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// The string, when this is one.
    pub(super) fn into_string(self) -> Option<Cow<'a, str>> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// The items, when this is an array.
    pub(super) fn into_array(self) -> Option<Vec<&'a RawValue>> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, when this is an object.
    pub(super) fn into_object(self) -> Option<Members<'a>> {
        match self {
            Self::Object(members) => Some(members),
            _ => None,
        }
    }
}

impl<'a> Members<'a> {
    /// The value under `key`, read one level deep.
    pub(super) fn get(&self, key: &str) -> Option<Shallow<'a>> {
        self.0.iter().rev().find(|(name, _)| name == key).map(|(_, raw)| Shallow::of(raw))
    }

    /// The value under `key` as the source wrote it.
    pub(super) fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(name, _)| name == key).map(|(_, raw)| *raw)
    }

    /// Every member, the value read one level deep. A key that appears
    /// more than once comes once per appearance.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, Shallow<'a>)> + '_ {
        self.0.iter().map(|(name, raw)| (name.as_ref(), Shallow::of(raw)))
    }
}

impl<'de> Deserialize<'de> for Shallow<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShallowVisitor)
    }
}

/// Builds a [`Shallow`] from whatever the deserializer finds.
struct ShallowVisitor;

impl<'de> Visitor<'de> for ShallowVisitor {
    type Value = Shallow<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shallow::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Shallow::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Shallow::Unsigned(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).map_or(Shallow::OtherNumber, Shallow::Unsigned))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shallow::OtherNumber)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Shallow::String(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Shallow::String(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Shallow::String(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Shallow::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(name), value)) = map.next_entry()? {
            members.push((name, value));
        }
        Ok(Shallow::Object(Members(members)))
    }
}

/// An object key, borrowed from the body unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_str(ShallowVisitor)? {
            Shallow::String(text) => Ok(Key(text)),
            other => Err(de::Error::custom(format_args!("an object key is {}", other.kind()))),
        }
    }
}
