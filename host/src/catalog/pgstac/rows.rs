//! Items and collections as binary COPY rows of the pgstac staging tables
//! (see [`super::load`]): `id, geometry, collection, datetime,
//! end_datetime, content, private` for items (exactly the columns of
//! `pgstac.items`, so a load can COPY them straight into a partition; the
//! staging table numbers them itself), `seq, id, content` for
//! collections. Item content is dehydrated against the collection's base
//! item the way pypgstac does it, and every JSON value pgstac stores is
//! written the way pypgstac writes it (see [`super::numbers`]).

use std::collections::BTreeMap;

use super::dehydrate::{DO_NOT_MERGE, write_member};
use super::numbers::write_canonical;
use super::{CollectionInfo, Collections};
use crate::copy::binary::{field, int8, jsonb_with, null, row, timestamptz};
use crate::stac::{Invalid, ItemFields};

/// The key pgstac tags an item with: the base item it was dehydrated against.
const BASE_ITEM_TAG: &str = "pgstac:base_item";

/// Members of an item that are columns (or the tag), not content.
const NOT_CONTENT: &[&str] = &["id", "collection", "geometry", "private", BASE_ITEM_TAG];

/// Appends one item row, or says why pgstac cannot store the item (then
/// nothing is appended).
///
/// The item is not parsed again: its members come from the check
/// ([`ItemFields::members`]). Those the base item has (`type`,
/// `stac_version`, `assets`) are diffed against it from their text
/// ([`write_member`]); the rest go from the text to the row; either way
/// numbers are written as pypgstac writes them ([`write_canonical`]) and
/// nothing of the item is built in memory.
pub fn write_item(
    out: &mut Vec<u8>,
    f: &ItemFields<'_>,
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
    let members = f.members.unique();
    // pgstac's range: start/end when both are given, else datetime for both.
    let (datetime, end) = match (f.ranged, f.datetime) {
        (false, Some(d)) => (d, d),
        _ => (f.start, f.end),
    };

    let start = out.len();
    let written = (|| {
        row(out, 7);
        field(out, f.id.as_bytes());
        field(out, &geometry.ewkb);
        field(out, f.collection.as_bytes());
        timestamptz(out, datetime);
        timestamptz(out, end);
        let mut content = Ok(());
        jsonb_with(out, |out| content = write_content(out, &members, c));
        content?;
        match members.get("private") {
            Some(&p) if p != "null" => {
                let mut done = Ok(());
                jsonb_with(out, |out| done = write_canonical(p, out));
                done
            }
            _ => {
                null(out);
                Ok(())
            }
        }
    })();
    written.map_err(|e| {
        out.truncate(start);
        invalid(e)
    })
}

/// The item's content: its difference from the base item, as JSON.
fn write_content(
    out: &mut Vec<u8>,
    members: &BTreeMap<&str, &str>,
    c: &CollectionInfo,
) -> Result<(), String> {
    out.push(b'{');
    let empty = out.len();
    let key = |out: &mut Vec<u8>, k: &str| {
        if out.len() > empty {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).expect("writing JSON to memory cannot fail");
        out.push(b':');
    };
    for (&k, raw) in members {
        if NOT_CONTENT.contains(&k) {
            continue;
        }
        let at = out.len();
        key(out, k);
        match c.base_item.get(k) {
            None => write_canonical(raw, out)?,
            // Equal to the base's: the key is taken back.
            Some(b) => {
                if !write_member(b, raw, out)? {
                    out.truncate(at);
                }
            }
        }
    }
    // Keys of the base the item lacks must not come back on hydration.
    for k in c.base_item.keys() {
        if !members.contains_key(k.as_str()) && !NOT_CONTENT.contains(&k.as_str()) {
            key(out, k);
            serde_json::to_writer(&mut *out, DO_NOT_MERGE)
                .expect("writing JSON to memory cannot fail");
        }
    }
    if let Some(tag) = c.base_item_id {
        key(out, BASE_ITEM_TAG);
        serde_json::to_writer(&mut *out, &tag).expect("writing JSON to memory cannot fail");
    }
    out.push(b'}');
    Ok(())
}

/// Appends one collection row. The content is written as pypgstac writes
/// what it read ([`write_canonical`]), so both tools store the same numbers.
pub fn write_collection(out: &mut Vec<u8>, seq: u64, id: &str, text: &str) -> Result<(), Invalid> {
    let start = out.len();
    row(out, 3);
    int8(out, seq as i64);
    field(out, id.as_bytes());
    let mut done = Ok(());
    jsonb_with(out, |out| done = write_canonical(text, out));
    done.map_err(|e| {
        out.truncate(start);
        Invalid::new(Some(id), e)
    })
}
