//! Items and collections as binary COPY rows of the pgstac staging tables
//! (see [`super::store`]): `seq, id, geometry, collection, datetime,
//! end_datetime, content, private` for items, `seq, id, content` for
//! collections. Item content is dehydrated against the collection's base
//! item the way pypgstac does it.

use serde_json::{Map, Value};

use super::Collections;
use super::dehydrate::dehydrate;
use crate::stac::rows::{field, len, null, timestamptz};
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

    out.extend_from_slice(&8i16.to_be_bytes());
    field(out, &(seq as i64).to_be_bytes());
    field(out, f.id.as_bytes());
    field(out, &geometry.ewkb);
    field(out, f.collection.as_bytes());
    timestamptz(out, datetime);
    timestamptz(out, end);
    jsonb(out, &Value::Object(content));
    match private {
        Some(p) if !p.is_null() => jsonb(out, &p),
        _ => null(out),
    }
    Ok(())
}

/// Appends one collection row.
pub fn write_collection(out: &mut Vec<u8>, seq: u64, id: &str, content: &str) {
    out.extend_from_slice(&3i16.to_be_bytes());
    field(out, &(seq as i64).to_be_bytes());
    field(out, id.as_bytes());
    len(out, 1 + content.len());
    out.push(1);
    out.extend_from_slice(content.as_bytes());
}

/// A jsonb field: version byte 1, then the JSON text.
fn jsonb(out: &mut Vec<u8>, v: &Value) {
    let at = out.len();
    len(out, 0);
    out.push(1);
    serde_json::to_writer(&mut *out, v).expect("writing JSON to memory cannot fail");
    let n = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&n.to_be_bytes());
}
