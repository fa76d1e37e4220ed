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

/// Deserializes a member as raw JSON even when it is `null`, so that a
/// missing member (`None`) and a `null` one (`Some("null")`) differ.
fn keep_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Whether JSON text holds a `\u0000` escape (an escaped backslash followed
/// by `u0000` is not one).
fn has_nul_escape(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memmem::find_iter(b, b"\\u0000").any(|i| {
        let backslashes = b[..=i].iter().rev().take_while(|&&c| c == b'\\').count();
        backslashes % 2 == 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_but_escaped_backslashes_are_not() {
        assert!(has_nul_escape(r#"{"a":"x\u0000"}"#));
        assert!(!has_nul_escape(r#"{"a":"x\\u0000"}"#));
        assert!(has_nul_escape(r#"{"a":"x\\\u0000"}"#));
        assert!(!has_nul_escape(r#"{"a":"u0000"}"#));
    }

    #[test]
    fn raw_strings_unescape() {
        let raw: Box<RawValue> = serde_json::from_str(r#""a\"b\u00e9""#).unwrap();
        assert_eq!(raw_str(&raw).unwrap(), "a\"bé");
        let raw: Box<RawValue> = serde_json::from_str("5").unwrap();
        assert_eq!(raw_str(&raw), None);
    }
}
