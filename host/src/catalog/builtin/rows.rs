//! Items and collections as rows of PostgreSQL's binary COPY format
//! ([`crate::copy::binary`]), in the column order of [`super::load`]'s
//! tables: `[seq,] collection, id, geometry, bbox, datetime, start_datetime,
//! end_datetime, content` for items and `[seq,] id, content` for collections.
//! The content is the record's text as loaded.

use crate::copy::binary::{field, float8_array, int8, jsonb, len, null, row, timestamptz};
use crate::stac::ItemFields;

/// Appends one item row. `seq` is the record's position in the load (for
/// "last one wins" among duplicates); `None` leaves the column out.
pub fn write_item(out: &mut Vec<u8>, seq: Option<u64>, f: &ItemFields<'_>, content: &str) {
    row(out, if seq.is_some() { 9 } else { 8 });
    if let Some(seq) = seq {
        int8(out, seq as i64);
    }
    field(out, f.collection.as_bytes());
    field(out, f.id.as_bytes());
    match &f.geometry {
        // PostGIS reads (E)WKB in binary COPY.
        Some(g) => field(out, &g.ewkb),
        None => null(out),
    }
    match &f.bbox {
        Some(b) => float8_array(out, b),
        None => null(out),
    }
    match f.datetime {
        Some(t) => timestamptz(out, t),
        None => null(out),
    }
    timestamptz(out, f.start);
    timestamptz(out, f.end);
    match f.collection_missing {
        false => jsonb(out, content),
        true => with_collection(out, content, &f.collection),
    }
}

/// Appends one collection row.
pub fn write_collection(out: &mut Vec<u8>, seq: Option<u64>, id: &str, content: &str) {
    row(out, if seq.is_some() { 3 } else { 2 });
    if let Some(seq) = seq {
        int8(out, seq as i64);
    }
    field(out, id.as_bytes());
    jsonb(out, content);
}

/// The content as jsonb with a `"collection"` member put first (the rest of
/// the text is untouched).
fn with_collection(out: &mut Vec<u8>, content: &str, collection: &str) {
    let open = content.find('{').expect("a checked object starts with {");
    let (head, rest) = content.split_at(open + 1);
    let empty = rest.trim_start().starts_with('}');
    let member = format!(
        "\"collection\":{}{}",
        serde_json::Value::from(collection),
        if empty { "" } else { "," }
    );
    len(out, 1 + head.len() + member.len() + rest.len());
    out.push(1);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(member.as_bytes());
    out.extend_from_slice(rest.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::binary::tests::fields;
    use std::borrow::Cow;

    /// Microseconds from 1970 to 2000, PostgreSQL's epoch.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

    #[test]
    fn item_row_fields() {
        let f = ItemFields {
            collection: Cow::Borrowed("c\t1"),
            id: Cow::Borrowed("a"),
            collection_missing: true,
            geometry: None,
            bbox: Some(vec![1.5, -2.0]),
            datetime: None,
            start: PG_EPOCH_MICROS,
            end: PG_EPOCH_MICROS + 1,
            ranged: false,
            members: Default::default(),
        };
        let mut out = Vec::new();
        write_item(&mut out, Some(7), &f, "{\n \"id\":\"a\\\\b\"}");
        let v = fields(&out);
        assert_eq!(v.len(), 9);
        assert_eq!(v[0].as_deref(), Some(&7i64.to_be_bytes()[..]));
        assert_eq!(v[1].as_deref(), Some(&b"c\t1"[..]));
        assert_eq!(v[3], None);
        let bbox = v[4].as_ref().unwrap();
        assert_eq!(bbox.len(), 20 + 24);
        assert_eq!(&bbox[8..12], &701u32.to_be_bytes());
        assert_eq!(&bbox[24..32], &1.5f64.to_be_bytes());
        assert_eq!(v[5], None);
        assert_eq!(v[6].as_deref(), Some(&0i64.to_be_bytes()[..]));
        assert_eq!(v[7].as_deref(), Some(&1i64.to_be_bytes()[..]));
        assert_eq!(
            v[8].as_deref(),
            Some(&b"\x01{\"collection\":\"c\\t1\",\n \"id\":\"a\\\\b\"}"[..])
        );
        let mut out = Vec::new();
        write_collection(&mut out, None, "x", "{}");
        assert_eq!(
            fields(&out),
            vec![Some(b"x".to_vec()), Some(b"\x01{}".to_vec())]
        );
    }
}
