//! A jobs document as an ordered tree, whatever its format.
//!
//! Jobs, tables, `where` and `select` entries are all maps whose order
//! matters (jobs run in file order; columns keep the order written).
//! `serde_json::Map` only keeps insertion order with a feature that would
//! change the map type for the whole workspace, so JSON (and the JSON a
//! pg-xmat module is turned into) is deserialized into our own tree; TOML is
//! read with its spans ([`from_toml`]), so errors can name the line of a key.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::de::{DeTable, DeValue};

use super::lines::KeyLines;

/// One value of a jobs file.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings, and TOML dates and times in their RFC 3339 text.
    Str(String),
    List(Vec<Node>),
    /// Keys in file order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::List(_) => "a list",
            Node::Map(_) => "a table",
        }
    }

    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A TOML document with the line of every key, or the parser's message and line.
pub fn from_toml(text: &str) -> Result<(Node, KeyLines), (String, Option<u32>)> {
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        (e.message().trim_end().to_string(), line)
    })?;
    let mut lines = KeyLines::default();
    let root = toml_table(doc.get_ref(), text, &mut Vec::new(), &mut lines);
    Ok((root, lines))
}

fn toml_table(
    table: &DeTable<'_>,
    text: &str,
    path: &mut Vec<String>,
    lines: &mut KeyLines,
) -> Node {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        lines.add(line_of(text, key.span().start), path.clone());
        let node = toml_value(value.get_ref(), text, path, lines);
        entries.push((path.pop().expect("pushed above"), node));
    }
    Node::Map(entries)
}

fn toml_value(
    value: &DeValue<'_>,
    text: &str,
    path: &mut Vec<String>,
    lines: &mut KeyLines,
) -> Node {
    match value {
        DeValue::String(s) => Node::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(v) => Node::Int(v),
            Err(_) => Node::Str(i.to_string()),
        },
        DeValue::Float(f) => Node::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Node::Bool(*b),
        DeValue::Datetime(d) => Node::Str(d.to_string()),
        DeValue::Array(items) => Node::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    path.push(i.to_string());
                    let n = toml_value(v.get_ref(), text, path, lines);
                    path.pop();
                    n
                })
                .collect(),
        ),
        DeValue::Table(t) => toml_table(t, text, path, lines),
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .or(Ok(Node::Str(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Node = map.next_value()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_in_both_formats() {
        let (t, lines) = from_toml("b = 1\na = { z = 2, y = 1979-05-27 }\n").unwrap();
        let j: Node =
            serde_json::from_str(r#"{"b": 1, "a": {"z": 2, "y": "1979-05-27"}}"#).unwrap();
        assert_eq!(t, j);
        let Node::Map(m) = &t else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(
            t.get("a").unwrap().get("y"),
            Some(&Node::Str("1979-05-27".into()))
        );
        assert_eq!(lines.find(&["a", "y"]), Some(2));
    }

    #[test]
    fn toml_keys_have_lines_and_errors_too() {
        let text = "[\"j:1\"]\nsource = 1\n\n[\"j:1\".tables.users]\nwhere = { id = [1, 0x10] }\n";
        let (t, lines) = from_toml(text).unwrap();
        assert_eq!(
            lines.find(&["j:1", "tables", "users", "where", "id"]),
            Some(5)
        );
        assert_eq!(lines.find(&["j:1", "source"]), Some(2));
        let id = t
            .get("j:1")
            .unwrap()
            .get("tables")
            .unwrap()
            .get("users")
            .unwrap();
        assert_eq!(
            id.get("where").unwrap().get("id"),
            Some(&Node::List(vec![Node::Int(1), Node::Int(16)]))
        );
        let (message, line) = from_toml("a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(line, Some(2), "{message}");
        assert!(
            from_toml("a = 1\na = 2\n")
                .unwrap_err()
                .0
                .contains("duplicate")
        );
    }

    #[test]
    fn refuses_duplicate_keys_in_json() {
        assert!(serde_json::from_str::<Node>(r#"{"a": 1, "a": 2}"#).is_err());
    }
}
