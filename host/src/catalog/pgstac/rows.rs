//! Items and collections as binary COPY rows of the pgstac staging tables
//! (see [`super::load`]): `seq, id, geometry, collection, datetime,
//! end_datetime, content, private` for items, `seq, id, content` for
//! collections. Item content is dehydrated against the collection's base
//! item the way pypgstac does it, and every JSON value pgstac stores is
//! written the way pypgstac writes it (see [`super::numbers`]).

use serde_json::{Map, Value};

use super::Collections;
use super::dehydrate::dehydrate;
use super::numbers::integer_zero;
use crate::copy::binary::{field, int8, jsonb_with, null, row, timestamptz};
use crate::stac::{Invalid, ItemFields};

/// The key pgstac tags an item with: the base item it was dehydrated against.
const BASE_ITEM_TAG: &str = "pgstac:base_item";

/// Appends one item row, or says why pgstac cannot store the item.
pub fn write_item(
    out: &mut Vec<u8>,
    seq: u64,
    f: &ItemFields<'_>,
    text: &str,
    collections: &Collections,
) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid::new(Some(&f.id), reason);
    let Some(geometry) = &f.geometry else {
        return Err(invalid(
            "\"geometry\" is null, and pgstac stores no item without a geometry".into(),
        ));
    };
    let c = collections
        .get(f.collection.as_ref())
        .ok_or_else(|| invalid(format!("collection \"{}\" does not exist", f.collection)))?;
    let mut item: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
    if f.collection_missing {
        item.insert("collection".into(), Value::String(f.collection.to_string()));
    }
    let private = item.remove("private");
    let mut content = dehydrate(&c.base_item, item);
    for k in ["id", "collection", "geometry", BASE_ITEM_TAG] {
        content.remove(k);
    }
    if let Some(tag) = c.base_item_id {
        content.insert(BASE_ITEM_TAG.into(), Value::from(tag));
    }
    // pgstac's range: start/end when both are given, else datetime for both.
    let (datetime, end) = match (f.ranged, f.datetime) {
        (false, Some(d)) => (d, d),
        _ => (f.start, f.end),
    };

    row(out, 8);
    int8(out, seq as i64);
    field(out, f.id.as_bytes());
    field(out, &geometry.ewkb);
    field(out, f.collection.as_bytes());
    timestamptz(out, datetime);
    timestamptz(out, end);
    json(out, &Value::Object(content));
    match private {
        Some(p) if !p.is_null() => json(out, &p),
        _ => null(out),
    }
    Ok(())
}

/// Appends one collection row. The content is written as pypgstac writes
/// it (read, then serialized again), so both tools store the same numbers.
pub fn write_collection(out: &mut Vec<u8>, seq: u64, id: &str, text: &str) -> Result<(), Invalid> {
    let content: Value = serde_json::from_str(&integer_zero(text))
        .map_err(|e| Invalid::new(Some(id), format!("invalid JSON: {e}")))?;
    row(out, 3);
    int8(out, seq as i64);
    field(out, id.as_bytes());
    json(out, &content);
    Ok(())
}

/// A jsonb field holding `v` serialized: each number as the shortest text
/// that reads back as the same double (what pypgstac's orjson writes).
fn json(out: &mut Vec<u8>, v: &Value) {
    jsonb_with(out, |out| {
        serde_json::to_writer(out, v).expect("writing JSON to memory cannot fail")
    });
}
