//! pgstac's client-side dehydration: an item is stored as its difference
//! from its collection's *base item* (`type`, `stac_version`, the
//! collection's `item_assets` as `assets`, `collection`), and pgstac's
//! `content_hydrate` (`merge_jsonb`) puts the two back together on read.
//!
//! The algorithm is pypgstac's (`hydration.dehydrate`): equal values (by
//! Python's `==`, see [`super::numbers::same`]) are left out, objects are
//! diffed recursively, lists of equal length element by element, and keys the base has but the item lacks are marked with
//! [`DO_NOT_MERGE`] so hydration does not bring them back. Two cases differ,
//! where pypgstac's output does not hydrate back to the item: an empty list
//! where the base has something else is kept (pypgstac drops it, and the
//! base's value comes back), and a `null` where the base has a value is
//! marked (pypgstac drops it, and the base's value comes back; pgstac
//! returns no nulls at all, so the key is then simply absent).

use serde_json::{Map, Value};

use super::numbers::{same, write_canonical};
use crate::stac::Members;

/// The value that tells `merge_jsonb` to leave a base item's key out.
pub const DO_NOT_MERGE: &str = "𒍟※";

/// Appends what is stored of an item's member whose text is `raw` and
/// whose value in the base item is `base` — [`member`], straight from the
/// text: only the base's side is a built value; the item's is read as it is
/// written, its numbers written as pypgstac writes them ([`write_canonical`]).
/// Returns whether anything was appended (`false`: equal to the base,
/// nothing is stored).
pub fn write_member(base: &Value, raw: &str, out: &mut Vec<u8>) -> Result<bool, String> {
    let start = out.len();
    let differs = match (base, raw.as_bytes().first()) {
        (Value::Object(b), Some(b'{')) => write_object(b, raw, out)?,
        (Value::Array(b), Some(b'[')) => {
            let mut items = Vec::with_capacity(b.len());
            crate::json_check::check_elements(raw, &mut items).map_err(|e| e.to_string())?;
            if items.len() != b.len() {
                write_canonical(raw, out)?;
                return Ok(true);
            }
            // Equal lengths: element by element, objects diffed, the rest as they are.
            let mut differs = false;
            let mut scratch = Vec::new();
            out.push(b'[');
            for (i, (b, v)) in b.iter().zip(items).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let v = &raw[v.value];
                match (b, v.as_bytes().first()) {
                    (Value::Object(b), Some(b'{')) => differs |= write_object(b, v, out)?,
                    _ => {
                        scratch.clear();
                        differs |= write_member(b, v, &mut scratch)?;
                        write_canonical(v, out)?;
                    }
                }
            }
            out.push(b']');
            differs
        }
        (Value::Null, Some(b'n')) => false,
        (_, Some(b'n')) => {
            serde_json::to_writer(&mut *out, DO_NOT_MERGE).map_err(invalid)?;
            true
        }
        // An object or array where the base has something else.
        (_, Some(b'{' | b'[')) => unless_equal(false, raw, out)?,
        (Value::String(b), Some(b'"')) => {
            let equal = match serde_json::from_str::<&str>(raw) {
                Ok(s) => s == b,
                // Escapes: unescape into a String.
                Err(_) => serde_json::from_str::<String>(raw).map_err(invalid)? == *b,
            };
            unless_equal(equal, raw, out)?
        }
        _ => {
            // A number no double holds is not equal: write_canonical refuses it.
            let equal = serde_json::from_str::<Value>(raw).is_ok_and(|v| same(base, &v));
            unless_equal(equal, raw, out)?
        }
    };
    if !differs {
        out.truncate(start);
    }
    Ok(differs)
}

/// Appends the scalar (or whole value) `raw` unless it is `equal` to the
/// base's; returns whether it was appended.
fn unless_equal(equal: bool, raw: &str, out: &mut Vec<u8>) -> Result<bool, String> {
    if !equal {
        write_canonical(raw, out)?;
    }
    Ok(!equal)
}

/// Appends [`dehydrate`] of the JSON object `raw` against `base` (always an
/// object, `{}` when nothing differs); returns whether anything differs.
fn write_object(base: &Map<String, Value>, raw: &str, out: &mut Vec<u8>) -> Result<bool, String> {
    let members = Members::read(raw).map_err(|e| e.to_string())?;
    let members = members.unique();
    let mut first = true;
    out.push(b'{');
    for (k, v) in &members {
        let at = out.len();
        if !first {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).map_err(invalid)?;
        out.push(b':');
        let kept = match base.get(*k) {
            None => {
                write_canonical(v, out)?;
                true
            }
            Some(b) => write_member(b, v, out)?,
        };
        if kept {
            first = false;
        } else {
            out.truncate(at);
        }
    }
    // Keys of the base the item lacks must not come back on hydration.
    for k in base.keys().filter(|k| !members.contains_key(k.as_str())) {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, k).map_err(invalid)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, DO_NOT_MERGE).map_err(invalid)?;
    }
    out.push(b'}');
    Ok(!first)
}

fn invalid(e: serde_json::Error) -> String {
    format!("invalid JSON: {e}")
}

/// The difference of `item` from `base`: what pgstac stores. The reference
/// [`write_member`] is held to (`tests::the_text_writer_is_the_reference`).
pub fn dehydrate(base: &Map<String, Value>, item: Map<String, Value>) -> Map<String, Value> {
    // Keys of the base the item lacks must not come back on hydration.
    let marked: Vec<&String> = base.keys().filter(|k| !item.contains_key(*k)).collect();
    let mut out = Map::new();
    for (key, value) in item {
        let kept = match base.get(&key) {
            None => Some(value),
            Some(b) => member(b, value),
        };
        if let Some(v) = kept {
            out.insert(key, v);
        }
    }
    for key in marked {
        out.insert(key.clone(), Value::String(DO_NOT_MERGE.into()));
    }
    out
}

/// What is stored of an item's `value` for a key whose value in the base
/// item is `base`: nothing when they are equal, else the difference.
pub fn member(base: &Value, value: Value) -> Option<Value> {
    if same(base, &value) {
        return None;
    }
    Some(match (base, value) {
        (Value::Array(bs), Value::Array(vs)) if bs.len() == vs.len() => Value::Array(
            bs.iter()
                .zip(vs)
                .map(|(b, v)| match (b, v) {
                    (Value::Object(b), Value::Object(v)) => Value::Object(dehydrate(b, v)),
                    (_, v) => v,
                })
                .collect(),
        ),
        (_, Value::Null) => Value::String(DO_NOT_MERGE.into()),
        (Value::Object(b), Value::Object(v)) => Value::Object(dehydrate(b, v)),
        (_, v) => v,
    })
}

/// pgstac's `merge_jsonb(item, base)` followed by the `jsonb_strip_nulls` it
/// applies: what `content_hydrate` returns for a dehydrated item. For tests
/// and checks; the database does the real hydration.
pub fn hydrate(item: &Value, base: &Value) -> Option<Value> {
    let merged = merge(Some(item), Some(base))?;
    Some(strip_nulls(merged))
}

fn merge(a: Option<&Value>, b: Option<&Value>) -> Option<Value> {
    match (a, b) {
        (Some(Value::String(s)), _) if s == DO_NOT_MERGE => None,
        (None | Some(Value::Null), b) => b.cloned(),
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut out = Map::new();
            for (k, v) in a {
                if let Some(m) = merge(Some(v), b.get(k)) {
                    out.insert(k.clone(), m);
                }
            }
            for (k, v) in b {
                if !a.contains_key(k)
                    && let Some(m) = merge(None, Some(v))
                {
                    out.insert(k.clone(), m);
                }
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => Some(Value::Array(
            a.iter()
                .zip(b)
                .map(|(a, b)| merge(Some(a), Some(b)).unwrap_or(Value::Null))
                .collect(),
        )),
        (Some(a), _) => Some(a.clone()),
    }
}

/// `jsonb_strip_nulls`: object members whose value is null go, at any depth
/// (array elements stay).
pub fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn base() -> Value {
        json!({"type": "Feature", "stac_version": "1.0.0", "collection": "c",
               "assets": {"B1": {"type": "image/tiff", "roles": ["data"], "title": "Band 1"},
                          "thumb": {"type": "image/png"}}})
    }

    #[test]
    fn equal_values_go_and_missing_keys_are_marked() {
        let item = json!({"type": "Feature", "stac_version": "1.0.0", "collection": "c",
            "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "assets": {"B1": {"href": "s3://b1.tif", "type": "image/tiff", "roles": ["data"],
                              "title": "Band 1"}}});
        let d = Value::Object(dehydrate(&obj(base()), obj(item.clone())));
        assert_eq!(
            d,
            json!({"properties": {"datetime": "2020-01-01T00:00:00Z"},
                   "assets": {"B1": {"href": "s3://b1.tif"}, "thumb": DO_NOT_MERGE}})
        );
        assert_eq!(hydrate(&d, &base()).unwrap(), item);
    }

    #[test]
    fn what_pypgstac_loses_comes_back() {
        let item = json!({"type": "Feature", "collection": "c", "x": null,
            "assets": {"B1": {"roles": [], "title": null, "type": "image/tiff"}, "thumb": []}});
        let d = Value::Object(dehydrate(&obj(base()), obj(item.clone())));
        // The null is gone either way (pgstac strips nulls), the rest is as loaded.
        assert_eq!(hydrate(&d, &base()).unwrap(), strip_nulls(item));
    }

    #[test]
    fn lists_of_equal_length_are_diffed_element_by_element() {
        let base = json!({"links": [{"rel": "a", "type": "t"}, {"rel": "b"}]});
        let item = json!({"links": [{"rel": "a", "href": "h"}, "x"]});
        let d = Value::Object(dehydrate(&obj(base.clone()), obj(item.clone())));
        assert_eq!(
            d,
            json!({"links": [{"href": "h", "type": DO_NOT_MERGE}, "x"]})
        );
        assert_eq!(hydrate(&d, &base).unwrap(), item);
    }

    /// The real items of the fixtures (NDJSON), each set with its
    /// collection's base item.
    fn fixtures() -> Vec<(Value, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stac");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        [
            (
                "planetary-computer/naip-collection.json",
                "planetary-computer/naip-items.ndjson",
            ),
            (
                "pgstac-testdata/collections.json",
                "pgstac-testdata/items.ndjson",
            ),
        ]
        .into_iter()
        .map(|(collection, items)| {
            let c: Value = serde_json::from_str(&read(collection)).unwrap();
            let c = if c.is_array() { c[0].clone() } else { c };
            let base = json!({"type": "Feature", "stac_version": c["stac_version"],
                "assets": c["item_assets"], "collection": c["id"]});
            (base, read(items))
        })
        .collect()
    }

    #[test]
    fn fixtures_round_trip() {
        for (base, items) in fixtures() {
            for line in items.lines() {
                let item: Value = serde_json::from_str(line).unwrap();
                let d = Value::Object(dehydrate(base.as_object().unwrap(), obj(item.clone())));
                assert_eq!(hydrate(&d, &base).unwrap(), strip_nulls(item));
            }
        }
    }

    /// What `write_member` writes for `raw` against `base`, read back.
    fn written(base: &Value, raw: &str) -> Option<Value> {
        let mut out = Vec::new();
        let kept = write_member(base, raw, &mut out).unwrap();
        assert_eq!(kept, !out.is_empty(), "{raw}");
        kept.then(|| serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn the_text_writer_is_the_reference() {
        let reference = |base: &Value, raw: &str| member(base, serde_json::from_str(raw).unwrap());
        let base = base();
        let cases = [
            (json!("Feature"), r#""Feature""#),
            (json!("Feature"), r#""Featur\u0065""#),
            (json!("Feature"), r#""Collection""#),
            (json!(10.0), "10"),
            (json!(10), "1e1"),
            (json!(9007199254740992u64), "9007199254740993"),
            (json!(0.1), "0.10000000000000001"),
            (json!(1), "true"),
            (json!(1), "null"),
            (json!(null), "null"),
            (json!(null), "[1]"),
            (json!([1, 2]), "[1.0,2]"),
            (json!([1, 2]), "[1,2,3]"),
            (json!([1, {"a": 1}]), r#"[1,{"a":1,"b":2}]"#),
            (json!([1, {"a": 1}]), r#"[2,{"a":1}]"#),
            (json!([[1], {"a": 1}]), r#"[[1.0],{"a":1}]"#),
            (json!([]), "[]"),
            (json!({}), "{}"),
            (json!({"a": 1}), "{}"),
            (json!({"a": 1}), "[]"),
            (json!({"a": {"b": [1, 2]}}), r#"{"a":{"b":[1,2]}}"#),
            (
                json!({"a": {"b": [1, 2]}}),
                r#"{"a":{"b":[1,3]},"a":{"b":[1,2]}}"#,
            ),
            (json!({"a": {"b": [1, 2]}}), r#"{"a":{"b":[1,2],"c":null}}"#),
            (json!({"a": 1}), r#"{"a":null,"\u00e9":-0.0}"#),
            (
                base["assets"].clone(),
                r#"{"B1":{"href":"h","type":"image/tiff","roles":["data"],"title":"Band 1"},"thumb":{"type":"image/png"}}"#,
            ),
            (
                base["assets"].clone(),
                r#"{"B1":{"roles":[],"title":null},"thumb":[]}"#,
            ),
        ];
        for (b, raw) in cases {
            assert_eq!(written(&b, raw), reference(&b, raw), "{b} / {raw}");
        }
        // Every member of real items, against their collections' base items
        // (with members the base items lack, so that more is diffed).
        for (mut base, items) in fixtures() {
            base["properties"] = json!({"gsd": 0.6, "naip:year": "2011"});
            base["links"] = json!([]);
            for line in items.lines() {
                for (k, raw) in Members::read(line).unwrap().0 {
                    if let Some(b) = base.get(k.as_ref()) {
                        assert_eq!(written(b, raw), reference(b, raw), "{k}");
                    }
                }
            }
        }
    }
}
