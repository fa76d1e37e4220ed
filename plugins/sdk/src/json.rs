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

use serde::de;
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

    /// Sets `key` to JSON text built by hand (an error, and no change, if it
    /// is not one JSON value). Cheaper than [`JsonObject::set_raw`] with
    /// `RawValue::from_string`: the text is checked by the scanner that
    /// [`JsonObject::parse`] uses, not by serde_json.
    pub fn set_json(&mut self, key: &str, json: impl Into<String>) -> Result<(), String> {
        let json = json.into();
        check_value(&json).map_err(|e| format!("`{key}`: invalid JSON: {e}"))?;
        let trimmed = json.trim_matches(WS);
        let json = if trimmed.len() == json.len() {
            json.into_boxed_str()
        } else {
            trimmed.into()
        };
        self.put(key, json);
        Ok(())
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
///
/// A hand-written scanner, not serde_json: serde_json would build (and
/// allocate for) nothing, but it still tokenizes every nested value through
/// its generic visitor machinery, and most of an item is nested string bodies
/// (asset hrefs, titles) that only need skipping. This checks the grammar just
/// as strictly (see `tests::agrees_with_serde_json`), scanning string bodies
/// eight bytes at a time.
fn parse_entries(src: &str) -> Result<Vec<Entry>, String> {
    let mut s = Scanner {
        b: src.as_bytes(),
        i: 0,
    };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(s.err("expected `{`"));
    }
    s.i += 1;
    s.ws();
    let mut entries = Vec::with_capacity(16);
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            if s.peek() != Some(b'"') {
                return Err(s.err("expected a string key"));
            }
            let key_start = s.i;
            let escaped = s.string()?;
            let key = key_start..s.i;
            let name = if escaped {
                let decoded: String = serde_json::from_str(&src[key.clone()])
                    .map_err(|e| format!("{e} in the key at byte {key_start}"))?;
                Some(decoded.into_boxed_str())
            } else {
                None
            };
            s.ws();
            if s.peek() != Some(b':') {
                return Err(s.err("expected `:`"));
            }
            s.i += 1;
            s.ws();
            let value_start = s.i;
            s.value(0)?;
            entries.push(Entry {
                key: Text::Src(key),
                name,
                value: Text::Src(value_start..s.i),
            });
            if !s.more(b'}')? {
                break;
            }
        }
    }
    s.ws();
    if s.i != s.b.len() {
        return Err(s.err("trailing characters after the object"));
    }
    Ok(entries)
}

/// JSON's whitespace.
const WS: [char; 4] = [' ', '\n', '\r', '\t'];

/// Checks that `src` is one JSON value, with optional whitespace around it.
fn check_value(src: &str) -> Result<(), String> {
    let mut s = Scanner {
        b: src.as_bytes(),
        i: 0,
    };
    s.ws();
    s.value(0)?;
    s.ws();
    if s.i != s.b.len() {
        return Err(s.err("trailing characters after the value"));
    }
    Ok(())
}

/// Deepest nesting below the top-level object accepted: 127 levels in all,
/// as many as `serde_json::from_str::<Value>` takes, so that
/// [`JsonObject::to_value`] and [`JsonObject::get`] can parse whatever
/// [`JsonObject::parse`] took. (It also bounds the scanner's recursion.)
const MAX_DEPTH: usize = 126;

/// A JSON grammar checker over bytes; every read is bounds-checked (`get`),
/// so malformed or truncated input gives an error, never a panic.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    #[cold]
    fn err(&self, what: &str) -> String {
        match self.b.get(self.i) {
            None => format!("{what}, found the end of the text at byte {}", self.i),
            Some(_) => format!("{what} at byte {}", self.i),
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.i += 1; // {
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:`"));
            }
            self.i += 1;
            self.ws();
            self.value(depth)?;
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.i += 1; // [
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            if !self.more(b']')? {
                return Ok(());
            }
        }
    }

    /// After a member or element: `,` (another follows) or `close` (the end).
    fn more(&mut self, close: u8) -> Result<bool, String> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.err(&format!("expected `,` or `{}`", char::from(close)))),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self
            .b
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    /// Skips a string literal (at its opening quote); returns whether it has
    /// escapes.
    fn string(&mut self) -> Result<bool, String> {
        self.i += 1; // "
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("invalid `\\u` escape"));
                            }
                            self.i += 5;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    /// Skips string bytes that need no attention: not `"`, not `\`, not a
    /// control character; eight bytes at a time.
    #[inline(always)]
    fn skip_plain(&mut self) {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        let b = self.b;
        while let Some(chunk) = b.get(self.i..self.i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            // The high bit of each byte that is < 0x20, `"` or `\` (Mycroft's
            // zero-byte test; bytes >= 0x80, UTF-8, are masked out). A borrow
            // can only flag bytes above a flagged one, so the lowest flag is
            // exact and the bytes are little-endian: it is the first special byte.
            let lt20 = w.wrapping_sub(LO * 0x20);
            let quote = (w ^ (LO * b'"' as u64)).wrapping_sub(LO);
            let bslash = (w ^ (LO * b'\\' as u64)).wrapping_sub(LO);
            let special = (lt20 | quote | bslash) & !w & HI;
            if special != 0 {
                self.i += special.trailing_zeros() as usize / 8;
                return;
            }
            self.i += 8;
        }
        while let Some(&c) = b.get(self.i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.i += 1;
        }
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

    /// serde_json's verdict: one JSON object, whitespace around allowed.
    fn serde_says(text: &str) -> bool {
        serde_json::from_str::<de::IgnoredAny>(text).is_ok() && text.trim_start().starts_with('{')
    }

    /// Every JSON object in the repository's STAC fixtures: whole `.json`
    /// files and the lines of `.ndjson` ones.
    fn fixtures() -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let ext = path.extension().and_then(|e| e.to_str());
                if path.is_dir() {
                    walk(&path, out);
                } else if ext == Some("json") {
                    out.push(std::fs::read_to_string(&path).unwrap());
                } else if ext == Some("ndjson") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.extend(text.lines().take(200).map(str::to_owned));
                }
            }
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/stac");
        let mut out = Vec::new();
        walk(std::path::Path::new(root), &mut out);
        assert!(out.len() > 50, "fixtures not found under {root}");
        out
    }

    fn agree(text: &str) {
        let ours = JsonObject::parse(text);
        assert_eq!(ours.is_ok(), serde_says(text), "{text:?}: {ours:?}");
    }

    #[test]
    fn agrees_with_serde_json_on_fixtures() {
        for text in fixtures() {
            let o = JsonObject::parse(text.as_str()).unwrap();
            let Value::Object(map) = serde_json::from_str::<Value>(&text).unwrap() else {
                panic!()
            };
            assert_eq!(o.len(), map.len());
            for (k, v) in &map {
                assert_eq!(o.get(k).as_ref(), Some(v), "{k}");
            }
            assert_eq!(o.to_json(), text);
        }
    }

    #[test]
    fn truncated_and_corrupted_fixtures_agree_with_serde_json() {
        for text in fixtures().iter().take(150) {
            // Every truncation of small objects (each one must be an error,
            // like serde_json says), every 13th of the larger ones.
            let step = if text.len() <= 8000 { 1 } else { 13 };
            for end in (0..text.len()).step_by(step) {
                if text.is_char_boundary(end) {
                    agree(&text[..end]);
                }
            }
            // ASCII bytes replaced by structural or odd characters.
            let step = if text.len() <= 8000 { 3 } else { 97 };
            for at in (0..text.len()).step_by(step) {
                if !text.as_bytes()[at].is_ascii() {
                    continue;
                }
                for c in [
                    "\"", "\\", "{", "}", "[", "]", ",", ":", "x", "0", "-", "\u{1}", " ",
                ] {
                    let mut bad = text.clone();
                    bad.replace_range(at..at + 1, c);
                    agree(&bad);
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_odd_texts() {
        for text in [
            "{}",
            " {\t}\n",
            "{",
            "}",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":1}}",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{\"a\":[1,]}",
            "{\"a\":[,1]}",
            "{\"a\":{\"b\"}}",
            "{\"a\":-}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":1e}",
            "{\"a\":1e+5}",
            "{\"a\":-0.5E-3}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":truex}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"\\u12G4\"}",
            "{\"a\":\"\\u00e9\"}",
            "{\"a\":\"\u{7}\"}",
            "{\"a\":\"é\u{7f}\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":1 2}",
            "{\"a\" 1}",
            "{1:1}",
            "{\"a\":\"0123456789abcdef\\\"0123456789\"}",
            "{\"a\":\"01234567\"}",
        ] {
            agree(text);
        }
        // Keys are decoded, so a lone surrogate there is an error (as it was
        // when serde_json found the keys), though serde_json can skip it.
        assert!(JsonObject::parse("{\"\\ud800\":1}").is_err());
        // serde_json skips values nested at any depth, but parses into a
        // `Value` at most 127 levels: so many are taken, no more.
        for depth in [125, 126, 127, 128, 129, 300] {
            let text = format!(
                "{{\"a\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            );
            let value = serde_json::from_str::<Value>(&text);
            assert_eq!(
                JsonObject::parse(text.as_str()).is_ok(),
                value.is_ok(),
                "{depth}"
            );
            assert_eq!(value.is_ok(), depth <= 127);
        }
    }

    #[test]
    fn set_json_checks_the_text() {
        let mut o = JsonObject::parse(r#"{"a":1}"#).unwrap();
        o.set_json("b", " [1, {\"c\":null}] ").unwrap();
        assert!(
            o.set_json("c", "[1,")
                .unwrap_err()
                .starts_with("`c`: invalid JSON")
        );
        assert!(o.set_json("c", "1 2").is_err());
        assert!(o.set_json("c", "").is_err());
        o.set_json("a", "1").unwrap();
        assert_eq!(o.to_json(), r#"{"a":1,"b":[1, {"c":null}]}"#);
    }
}
