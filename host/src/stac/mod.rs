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

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json_check::JsonError;

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

/// The string a JSON value's text holds, unescaped; `None` if it is not a string.
fn raw_str(raw: &str) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(raw) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// An object's members as written: each key (unescaped, borrowed unless it
/// had escapes) with its value's text, in order, duplicates included.
#[derive(Debug, Clone, Default)]
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a str)>);

impl<'a> Members<'a> {
    /// The value of the last member named `key` (as jsonb keeps it).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The members without duplicates (the last of each key wins, as in
    /// jsonb and pypgstac), in key order.
    pub fn unique(&self) -> BTreeMap<&str, &'a str> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            out.insert(k.as_ref(), *v);
        }
        out
    }

    /// Reads the members of the JSON object `text` while checking all of it
    /// as [`crate::json_check`] does (the grammar and what jsonb refuses):
    /// one pass, which builds nothing below the top level.
    pub fn read(text: &'a str) -> Result<Members<'a>, JsonError> {
        let mut spans = Vec::with_capacity(16);
        crate::json_check::check_members(text, &mut spans)?;
        Ok(Members(
            spans
                .into_iter()
                .map(|s| (key(text, s.key), &text[s.value]))
                .collect(),
        ))
    }
}

/// A checked key (the text between its quotes), unescaped.
fn key(text: &str, at: Range<usize>) -> Cow<'_, str> {
    let k = &text[at.clone()];
    if !k.contains('\\') {
        return Cow::Borrowed(k);
    }
    // Checked, so valid JSON with its quotes; escapes in keys are rare.
    let quoted = &text[at.start - 1..at.end + 1];
    Cow::Owned(serde_json::from_str(quoted).unwrap_or_else(|_| k.to_string()))
}

/// Reads a record's top level ([`Members::read`]). A record it refuses gets
/// the reason a JSON library gives when the text is not JSON at all, or,
/// when it is JSON that jsonb cannot store, the check's reason, naming the
/// record by its id when it has a readable one.
fn read_members(text: &str) -> Result<Members<'_>, Invalid> {
    Members::read(text).map_err(|e| match check_object::<IdOnly<'_>>(text) {
        Err(invalid) => invalid,
        Ok(r) => {
            let id =
                r.id.map(RawValue::get)
                    .and_then(raw_str)
                    .filter(|i| !i.is_empty() && i.len() <= MAX_ID_BYTES);
            Invalid::new(id.as_deref(), e.to_string())
        }
    })
}

/// A record's id, to name it in an error.
#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

/// Longest id accepted, in bytes: PostgreSQL's btree indexes take entries
/// of at most about 2.7 kB, and an item's key holds its collection's id and
/// its own.
pub const MAX_ID_BYTES: usize = 1024;

/// Refuses a record holding anything PostgreSQL's jsonb would refuse (see
/// [`crate::json_check`]), naming the record by `id` when it has a readable one.
fn check_storable(text: &str, id: Option<&str>) -> Result<(), Invalid> {
    crate::json_check::check_object(text).map_err(|e| {
        let id = id
            .and_then(raw_str)
            .filter(|i| !i.is_empty() && i.len() <= MAX_ID_BYTES);
        Invalid::new(id.as_deref(), e.to_string())
    })
}

/// A record's id: a non-empty string of at most [`MAX_ID_BYTES`].
fn check_id(raw: Option<&str>) -> Result<Cow<'_, str>, Invalid> {
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
        assert_eq!(raw_str(r#""a\"b\u00e9""#).unwrap(), "a\"bé");
        assert_eq!(raw_str("5"), None);
    }
}
