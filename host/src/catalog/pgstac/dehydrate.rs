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

use super::numbers::same;

/// The value that tells `merge_jsonb` to leave a base item's key out.
pub const DO_NOT_MERGE: &str = "𒍟※";

/// The difference of `item` from `base`: what pgstac stores.
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

    #[test]
    fn fixtures_round_trip() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stac");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        for (collection, items) in [
            (
                "planetary-computer/naip-collection.json",
                "planetary-computer/naip-items.ndjson",
            ),
            (
                "pgstac-testdata/collections.json",
                "pgstac-testdata/items.ndjson",
            ),
        ] {
            let c: Value = serde_json::from_str(&read(collection)).unwrap();
            let c = if c.is_array() { c[0].clone() } else { c };
            let base = json!({"type": "Feature", "stac_version": c["stac_version"],
                "assets": c["item_assets"], "collection": c["id"]});
            for line in read(items).lines() {
                let item: Value = serde_json::from_str(line).unwrap();
                let d = Value::Object(dehydrate(base.as_object().unwrap(), obj(item.clone())));
                assert_eq!(hydrate(&d, &base).unwrap(), strip_nulls(item));
            }
        }
    }
}
