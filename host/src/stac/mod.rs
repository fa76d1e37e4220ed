//! STAC records: the validation rules items and collections must meet and
//! the fields a catalog indexes. How they are stored is the catalogs'
//! ([`crate::catalog`]).
//!
//! ```
//! use std::collections::HashSet;
//! use host::stac::{ItemContext, check_item};
//! let known: HashSet<String> = ["naip".to_string()].into();
//! let ctx = ItemContext { collection: None, known: &known, strict_bbox: false };
//! let item = r#"{"type":"Feature","id":"a","collection":"naip","geometry":null,
//!   "properties":{"datetime":"2021-01-01T00:00:00Z"},"links":[],"assets":{}}"#;
//! let fields = check_item(item, &ctx).unwrap();
//! assert_eq!(fields.id, "a");
//! ```

mod collection;
pub mod geojson;
mod item;
pub mod time;

use std::borrow::Cow;

use std::collections::BTreeMap;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

pub use collection::check_collection;
pub use item::{ItemContext, ItemFields, check_item};

/// Why a record is not a valid item or collection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Invalid {
    /// The record's id, when it has a usable one.
    pub id: Option<String>,
    /// What is wrong, for people.
    pub reason: String,
}

impl Invalid {
    /// An invalid record with this id (if known) and reason.
    pub fn new(id: Option<&str>, reason: impl Into<String>) -> Invalid {
        Invalid {
            id: id.map(str::to_string),
            reason: reason.into(),
        }
    }
}

/// Parses a record's top level; any JSON error is the record's reason.
fn check_object<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, Invalid> {
    if !text.trim_start().starts_with('{') {
        return Err(Invalid::new(None, "not a JSON object"));
    }
    serde_json::from_str(text).map_err(|e| {
        let reason = if e.is_data() {
            e.to_string()
        } else {
            format!("invalid JSON: {e}")
        };
        Invalid::new(None, reason)
    })
}

/// The string a raw JSON value holds, unescaped; `None` if it is not a string.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// An object's members as written: each key (unescaped, borrowed unless it
/// had escapes) with its value's text, in order, duplicates included. One
/// pass over the text that builds nothing below the top level.
#[derive(Debug, Clone, Default)]
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The value of the last member named `key` (as jsonb keeps it).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The members without duplicates (the last of each key wins, as in
    /// jsonb and pypgstac), in key order.
    pub fn unique(&self) -> BTreeMap<&str, &'a RawValue> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            out.insert(k.as_ref(), *v);
        }
        out
    }

    /// Parses the members of the JSON object `text`.
    pub fn parse(text: &'a str) -> serde_json::Result<Members<'a>> {
        serde_json::from_str(text)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Members<'de>, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some(Key(k)) = m.next_key()? {
                    out.push((k, m.next_value()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Longest id accepted, in bytes: PostgreSQL's btree indexes take entries
/// of at most about 2.7 kB, and an item's key holds its collection's id and
/// its own.
pub const MAX_ID_BYTES: usize = 1024;

/// Refuses a record holding anything PostgreSQL's jsonb would refuse (see
/// [`crate::json_check`]), naming the record by `id` when it has a readable one.
fn check_storable(text: &str, id: Option<&RawValue>) -> Result<(), Invalid> {
    crate::json_check::check_object(text).map_err(|e| {
        let id = id
            .and_then(raw_str)
            .filter(|i| !i.is_empty() && i.len() <= MAX_ID_BYTES);
        Invalid::new(id.as_deref(), e.to_string())
    })
}

/// A record's id: a non-empty string of at most [`MAX_ID_BYTES`].
fn check_id(raw: Option<&RawValue>) -> Result<Cow<'_, str>, Invalid> {
    match raw.map(raw_str) {
        Some(Some(id)) if id.len() > MAX_ID_BYTES => {
            let mut end = 64;
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            Err(Invalid::new(
                Some(&format!("{}...", &id[..end])),
                format!(
                    "\"id\" is {} bytes; ids may be at most {MAX_ID_BYTES} (PostgreSQL indexes them)",
                    id.len()
                ),
            ))
        }
        Some(Some(id)) if !id.is_empty() => Ok(id),
        Some(Some(_)) => Err(Invalid::new(None, "\"id\" is empty")),
        Some(None) => Err(Invalid::new(None, "\"id\" is not a string")),
        None => Err(Invalid::new(None, "no \"id\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_unescape() {
        let raw: Box<RawValue> = serde_json::from_str(r#""a\"b\u00e9""#).unwrap();
        assert_eq!(raw_str(&raw).unwrap(), "a\"bé");
        let raw: Box<RawValue> = serde_json::from_str("5").unwrap();
        assert_eq!(raw_str(&raw), None);
    }
}
