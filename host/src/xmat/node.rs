//! A TOML or JSON document as an ordered tree.
//!
//! Jobs, tables, `where` and `select` entries are all maps whose order
//! matters (jobs run in file order; columns keep the order written).
//! `serde_json::Map` only keeps insertion order with a feature that would
//! change the map type for the whole workspace (toml's `preserve_order` is
//! harmless: only this module uses toml). So we deserialize into our own
//! tree, which also gives one shape to both file formats and lets errors
//! name the exact key.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

/// How toml hands a date-time to a self-describing visitor: a one-entry map.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

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
            if key == TOML_DATETIME_KEY && entries.is_empty() {
                let text: String = map.next_value()?;
                return Ok(Node::Str(text));
            }
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
        let t: Node = toml::from_str("b = 1\na = { z = 2, y = 1979-05-27 }\n").unwrap();
        let j: Node =
            serde_json::from_str(r#"{"b": 1, "a": {"z": 2, "y": "1979-05-27"}}"#).unwrap();
        assert_eq!(t, j);
        let Node::Map(m) = &t else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(
            t.get("a").unwrap().get("y"),
            Some(&Node::Str("1979-05-27".into()))
        );
    }

    #[test]
    fn refuses_duplicate_keys_in_json() {
        assert!(serde_json::from_str::<Node>(r#"{"a": 1, "a": 2}"#).is_err());
    }
}
