//! Lazily parsed JSON objects: STAC items without the cost of a full parse.
//!
//! Parsing a 4 KB STAC item into a `serde_json::Value` and printing it again
//! costs more than a plugin can afford per item. A [`JsonObject`] only finds
//! where each top-level value starts and ends (validating the whole text);
//! a value is parsed when asked for, and printing copies the untouched values
//! as they were given, byte for byte. An unmodified object prints as its input.

use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut, Range};

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// JSON text: a range of the parsed input, or text set later.
#[derive(Debug, Clone)]
enum Text {
    Src(Range<usize>),
    Own(Box<str>),
}

#[derive(Debug, Clone)]
struct Entry {
    /// The key as a JSON string literal, quotes included, as given.
    key: Text,
    /// The decoded key, only when the literal has escapes (otherwise it is
    /// the literal without its quotes).
    name: Option<Box<str>>,
    /// The value's JSON text.
    value: Text,
}

/// A JSON object whose top-level values are parsed only when asked for.
///
/// Keys keep their order; duplicate keys are kept too, and `get`, `set` and
/// `remove` act on the first. `set` replaces a value in place or appends a
/// new key at the end. Printing ([`JsonObject::to_json`]) gives the input
/// text unchanged if nothing was set or removed, otherwise the keys and values
/// joined without whitespace at the top level, each value's text as given.
#[derive(Clone)]
pub struct JsonObject {
    src: String,
    entries: Vec<Entry>,
    modified: bool,
}

impl JsonObject {
    /// An empty object.
    pub fn new() -> Self {
        JsonObject {
            src: String::from("{}"),
            entries: Vec::new(),
            modified: false,
        }
    }

    /// Parses `json`, which must be one JSON object (surrounding whitespace allowed).
    pub fn parse(json: impl Into<String>) -> Result<Self, String> {
        let src = json.into();
        let entries = parse_entries(&src).map_err(|e| format!("invalid JSON object: {e}"))?;
        Ok(JsonObject {
            src,
            entries,
            modified: false,
        })
    }

    /// The value of `key` as JSON text, exactly as given (or as set).
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.find(key).map(|i| self.text(&self.entries[i].value))
    }

    /// The value of `key`, parsed into a `serde_json::Value`.
    ///
    /// Objects inside come out with serde_json's key order (sorted); use
    /// [`JsonObject::get_object`] to change a nested object and keep its order.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.get_raw(key)
            .and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// The value of `key` if it is a JSON string; borrowed unless it has escapes.
    pub fn get_str(&self, key: &str) -> Option<Cow<'_, str>> {
        let raw = self.get_raw(key)?;
        let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('\\') {
            serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(inner))
        }
    }

    /// The value of `key` deserialized as `T` (`Vec<f64>`, `&str`, your own
    /// struct, [`JsonObject`]...); `Ok(None)` when the key is absent, an error
    /// naming the key when the value does not fit `T`.
    pub fn get_as<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Result<Option<T>, String> {
        match self.get_raw(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| format!("`{key}`: {e}")),
        }
    }

    /// The value of `key` as a lazily parsed object; an error if it is not an object.
    pub fn get_object(&self, key: &str) -> Result<Option<JsonObject>, String> {
        match self.get_raw(key) {
            None => Ok(None),
            Some(raw) => JsonObject::parse(raw)
                .map(Some)
                .map_err(|e| format!("`{key}`: {e}")),
        }
    }

    /// Sets `key` to `value` (anything serde can serialize: `&str`, numbers,
    /// `Value`, a [`JsonObject`], your own struct...).
    ///
    /// # Panics
    /// If `value` fails to serialize (a map with non-string keys, or a
    /// `Serialize` impl that returns an error); see [`JsonObject::try_set`].
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        if let Err(e) = self.try_set(key, value) {
            panic!("{e}");
        }
    }

    /// Sets `key` to `value`, or returns why `value` cannot be serialized.
    pub fn try_set(&mut self, key: &str, value: impl Serialize) -> Result<(), String> {
        let json = serde_json::to_string(&value)
            .map_err(|e| format!("cannot serialize the value of `{key}`: {e}"))?;
        self.put(key, json.into_boxed_str());
        Ok(())
    }

    /// Sets `key` to already serialized JSON.
    pub fn set_raw(&mut self, key: &str, value: &RawValue) {
        self.put(key, value.get().into());
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Some(i) => {
                self.entries.remove(i);
                self.modified = true;
                true
            }
            None => false,
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// The keys, in order, decoded.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| self.name(e))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether anything was set (to a different text) or removed since parsing.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The whole object parsed into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json()).expect("a JsonObject always holds valid JSON")
    }

    /// The object as JSON text (the input itself if unmodified).
    pub fn to_json(&self) -> String {
        if self.modified {
            self.build()
        } else {
            self.src.clone()
        }
    }

    /// The object as JSON text, without copying when unmodified.
    pub fn into_json(self) -> String {
        if self.modified {
            self.build()
        } else {
            self.src
        }
    }

    fn build(&self) -> String {
        let mut out = String::with_capacity(self.src.len() + 64);
        out.push('{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(self.text(&e.key));
            out.push(':');
            out.push_str(self.text(&e.value));
        }
        out.push('}');
        out
    }

    fn put(&mut self, key: &str, json: Box<str>) {
        match self.find(key) {
            Some(i) => {
                if self.text(&self.entries[i].value) != &*json {
                    self.entries[i].value = Text::Own(json);
                    self.modified = true;
                }
            }
            None => {
                let literal = serde_json::to_string(key).expect("a string always serializes");
                let name = (literal[1..literal.len() - 1] != *key).then(|| key.into());
                self.entries.push(Entry {
                    key: Text::Own(literal.into_boxed_str()),
                    name,
                    value: Text::Own(json),
                });
                self.modified = true;
            }
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| self.name(e) == key)
    }

    fn text<'a>(&'a self, t: &'a Text) -> &'a str {
        match t {
            Text::Src(r) => &self.src[r.clone()],
            Text::Own(s) => s,
        }
    }

    fn name<'a>(&'a self, e: &'a Entry) -> &'a str {
        match &e.name {
            Some(n) => n,
            None => {
                let literal = self.text(&e.key);
                &literal[1..literal.len() - 1]
            }
        }
    }
}

impl Default for JsonObject {
    fn default() -> Self {
        JsonObject::new()
    }
}

impl fmt::Display for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modified {
            f.write_str(&self.build())
        } else {
            f.write_str(&self.src)
        }
    }
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonObject({self})")
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_json()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        JsonObject::parse(String::from(Box::<str>::from(raw))).map_err(de::Error::custom)
    }
}

/// Finds each top-level key and value of the object in `src`.
fn parse_entries(src: &str) -> serde_json::Result<Vec<Entry>> {
    let mut de = serde_json::Deserializer::from_str(src);
    let entries = de::Deserializer::deserialize_map(&mut de, EntriesVisitor { src })?;
    de.end()?;
    Ok(entries)
}

struct EntriesVisitor<'s> {
    src: &'s str,
}

/// A key, borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Decoded(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Decoded(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Decoded(v))
    }
}

impl<'de> Visitor<'de> for EntriesVisitor<'_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
        // Everything borrowed below points into `self.src` (the deserializer
        // reads from it), so offsets are address differences.
        let base = self.src.as_ptr() as usize;
        let mut entries = Vec::with_capacity(16);
        // Where the text before the next key starts: the `{`, then each value's end.
        let mut gap_start = self.src.len() - self.src.trim_start().len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            let start = value.get().as_ptr() as usize - base;
            let end = start + value.get().len();
            let (key, name) = match key {
                Key::Borrowed(k) => {
                    let at = k.as_ptr() as usize - base;
                    (Text::Src(at - 1..at + k.len() + 1), None)
                }
                Key::Decoded(k) => {
                    // Between the previous value and this one there is only
                    // `{` or `,`, the key literal, `:` and whitespace.
                    let gap = &self.src[gap_start..start];
                    let literal = gap.trim()[1..]
                        .trim_start()
                        .trim_end_matches(':')
                        .trim_end();
                    let at = literal.as_ptr() as usize - base;
                    (Text::Src(at..at + literal.len()), Some(k.into_boxed_str()))
                }
            };
            entries.push(Entry {
                key,
                name,
                value: Text::Src(start..end),
            });
            gap_start = end;
        }
        Ok(entries)
    }
}

/// A STAC item (or any JSON object) as a lazily parsed [`JsonObject`].
///
/// Derefs to [`JsonObject`] for `get`, `set`, `remove`, `to_json`...
#[derive(Clone)]
pub struct Item(JsonObject);

impl Item {
    /// Parses one item (a JSON object).
    pub fn parse(json: impl Into<String>) -> Result<Item, String> {
        JsonObject::parse(json).map(Item)
    }

    /// The item's `id`, if it is a string.
    pub fn id(&self) -> Option<Cow<'_, str>> {
        self.0.get_str("id")
    }

    /// The item's `collection`, if it is a string.
    pub fn collection(&self) -> Option<Cow<'_, str>> {
        self.0.get_str("collection")
    }

    /// The item's `properties` object, lazily parsed.
    pub fn properties(&self) -> Result<Option<JsonObject>, String> {
        self.0.get_object("properties")
    }

    /// The item as JSON text, without copying when unmodified.
    pub fn into_json(self) -> String {
        self.0.into_json()
    }
}

impl Deref for Item {
    type Target = JsonObject;
    fn deref(&self) -> &JsonObject {
        &self.0
    }
}

impl DerefMut for Item {
    fn deref_mut(&mut self) -> &mut JsonObject {
        &mut self.0
    }
}

impl From<JsonObject> for Item {
    fn from(o: JsonObject) -> Item {
        Item(o)
    }
}

impl From<Item> for JsonObject {
    fn from(i: Item) -> JsonObject {
        i.0
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Item({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ITEM: &str = r#" { "type" : "Feature","id":"caf\u00e9-1", "a\\b":"x\"y" ,
        "bbox":[1, 2.50,3,4],"properties":{"z":1,"datetime":"2020-01-01T00:00:00Z","a":null},
        "links":[{"rel":"self","href":"http://x/\u00e9"}] } "#;

    #[test]
    fn unmodified_prints_input() {
        let item = Item::parse(ITEM).unwrap();
        assert!(!item.is_modified());
        assert_eq!(item.to_json(), ITEM);
        assert_eq!(item.into_json(), ITEM);
    }

    #[test]
    fn lazy_get() {
        let item = Item::parse(ITEM).unwrap();
        assert_eq!(item.id().unwrap(), "café-1");
        assert_eq!(item.get_str("type").unwrap(), "Feature");
        assert!(matches!(item.get_str("type").unwrap(), Cow::Borrowed(_)));
        assert_eq!(item.get_str("a\\b").unwrap(), "x\"y");
        assert_eq!(item.get_raw("bbox").unwrap(), "[1, 2.50,3,4]");
        assert_eq!(
            item.get_as::<Vec<f64>>("bbox").unwrap().unwrap(),
            [1.0, 2.5, 3.0, 4.0]
        );
        assert!(
            item.get_as::<String>("bbox")
                .unwrap_err()
                .starts_with("`bbox`: invalid type")
        );
        assert_eq!(item.get_as::<Vec<f64>>("nope").unwrap(), None);
        assert_eq!(
            item.get("links").unwrap(),
            json!([{"rel": "self", "href": "http://x/é"}])
        );
        assert!(item.get_str("bbox").is_none());
        assert_eq!(
            item.keys().collect::<Vec<_>>(),
            ["type", "id", "a\\b", "bbox", "properties", "links"]
        );
        let props = item.properties().unwrap().unwrap();
        assert_eq!(props.get_str("datetime").unwrap(), "2020-01-01T00:00:00Z");
        assert_eq!(props.get("a"), Some(Value::Null));
        assert_eq!(item.to_value()["properties"]["z"], json!(1));
    }

    #[test]
    fn set_and_remove_keep_the_rest_byte_for_byte() {
        let mut item = Item::parse(ITEM).unwrap();
        item.set("type", "Feature"); // same text: not a change
        assert!(!item.is_modified());
        item.set("collection", "new");
        item.set("bbox", json!([0, 0, 1, 1]));
        assert!(item.remove("type"));
        assert!(!item.remove("type"));
        item.set("é\n", 1);
        assert_eq!(
            item.to_json(),
            r#"{"id":"caf\u00e9-1","a\\b":"x\"y","bbox":[0,0,1,1],"properties":{"z":1,"datetime":"2020-01-01T00:00:00Z","a":null},"links":[{"rel":"self","href":"http://x/\u00e9"}],"collection":"new","é\n":1}"#
        );
        assert_eq!(item.get_str("é\n"), None);
        assert_eq!(item.get("é\n"), Some(json!(1)));
        // The printed text parses back to the same value.
        let again = Item::parse(item.to_json()).unwrap();
        assert_eq!(again.to_value(), item.to_value());
    }

    #[test]
    fn nested_objects_keep_their_order() {
        let mut item = Item::parse(ITEM).unwrap();
        let mut links: Vec<JsonObject> = item.get_as("links").unwrap().unwrap();
        links[0].set("href", "http://y");
        links.push(JsonObject::new());
        links[1].set("rel", "collection");
        item.set("links", &links);
        assert_eq!(
            item.get_raw("links").unwrap(),
            r#"[{"rel":"self","href":"http://y"},{"rel":"collection"}]"#
        );
        let mut props = item.properties().unwrap().unwrap();
        props.set("b", true);
        item.set("properties", props);
        assert_eq!(
            item.get_raw("properties").unwrap(),
            r#"{"z":1,"datetime":"2020-01-01T00:00:00Z","a":null,"b":true}"#
        );
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            "[1]",
            "{\"a\":1} x",
            "{\"a\":}",
            "",
            "\"s\"",
            "{\"a\":1,}",
            "{'a':1}",
        ] {
            let err = Item::parse(bad).unwrap_err();
            assert!(err.starts_with("invalid JSON object"), "{bad}: {err}");
        }
        let empty = Item::parse(" {} ").unwrap();
        assert!(empty.is_empty());
        assert_eq!(JsonObject::new().to_json(), "{}");
    }

    #[test]
    fn escaped_keys_keep_their_text() {
        let mut o = JsonObject::parse(" {\n \"\\u0061\" :1, \"x\\\":,y\":\t2 ,\"b\":3}").unwrap();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["a", "x\":,y", "b"]);
        assert_eq!(o.get_raw("x\":,y"), Some("2"));
        o.remove("b");
        assert_eq!(o.to_json(), r#"{"\u0061":1,"x\":,y":2}"#);
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let mut o = JsonObject::parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(o.get_raw("a"), Some("1"));
        o.set("a", 3);
        assert_eq!(o.to_json(), r#"{"a":3,"a":2}"#);
    }
}
