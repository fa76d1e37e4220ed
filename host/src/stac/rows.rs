//! Items and collections as rows of PostgreSQL's binary COPY format, in the
//! column order of [`super::store`]'s tables: `[seq,] collection, id,
//! geometry, bbox, datetime, start_datetime, end_datetime, content` for
//! items and `[seq,] id, content` for collections.
//!
//! Binary, not text: the server then parses no timestamps, numbers or hex
//! and de-escapes no 5 KB lines of JSON (measured: 12-23% less server time
//! for Sentinel-2-like items), and we escape nothing.
//!
//! A stream is [`HEADER`], any number of rows, then [`TRAILER`].

use super::ItemFields;

/// What a binary COPY stream starts with: signature, flags, extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// What it ends with: a tuple with -1 fields.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The OID of `float8`, the element type of `bbox`.
const FLOAT8_OID: u32 = 701;

/// Appends one item row. `seq` is the record's position in the load (for
/// "last one wins" among duplicates); `None` leaves the column out.
pub fn write_item(out: &mut Vec<u8>, seq: Option<u64>, f: &ItemFields<'_>, content: &str) {
    out.extend_from_slice(&(if seq.is_some() { 9i16 } else { 8 }).to_be_bytes());
    if let Some(seq) = seq {
        field(out, &(seq as i64).to_be_bytes());
    }
    field(out, f.collection.as_bytes());
    field(out, f.id.as_bytes());
    match &f.geometry {
        // PostGIS reads (E)WKB in binary COPY.
        Some(g) => field(out, &g.ewkb),
        None => null(out),
    }
    match &f.bbox {
        Some(b) => {
            // One-dimensional array: ndim, has-nulls, element type, size, lower bound.
            len(out, 20 + 12 * b.len());
            for v in [1i32, 0] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&FLOAT8_OID.to_be_bytes());
            for v in [b.len() as i32, 1] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            for v in b {
                field(out, &v.to_be_bytes());
            }
        }
        None => null(out),
    }
    match f.datetime {
        Some(t) => timestamptz(out, t),
        None => null(out),
    }
    timestamptz(out, f.start);
    timestamptz(out, f.end);
    jsonb(out, content, f.collection_missing.then_some(&f.collection));
}

/// Appends one collection row.
pub fn write_collection(out: &mut Vec<u8>, seq: Option<u64>, id: &str, content: &str) {
    out.extend_from_slice(&(if seq.is_some() { 3i16 } else { 2 }).to_be_bytes());
    if let Some(seq) = seq {
        field(out, &(seq as i64).to_be_bytes());
    }
    field(out, id.as_bytes());
    jsonb(out, content, None);
}

pub(super) fn len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as i32).to_be_bytes());
}

pub(super) fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    len(out, bytes.len());
    out.extend_from_slice(bytes);
}

pub(super) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

pub(super) fn timestamptz(out: &mut Vec<u8>, micros_since_1970: i64) {
    field(out, &(micros_since_1970 - PG_EPOCH_MICROS).to_be_bytes());
}

/// jsonb's binary input is a version byte (1) and the JSON text. With
/// `add_collection`, a `"collection"` member is put first (the rest of the
/// text is untouched).
fn jsonb(out: &mut Vec<u8>, content: &str, add_collection: Option<&str>) {
    match add_collection {
        None => {
            len(out, 1 + content.len());
            out.push(1);
            out.extend_from_slice(content.as_bytes());
        }
        Some(c) => {
            let open = content.find('{').expect("a checked object starts with {");
            let (head, rest) = content.split_at(open + 1);
            let empty = rest.trim_start().starts_with('}');
            let member = format!(
                "\"collection\":{}{}",
                serde_json::Value::from(c),
                if empty { "" } else { "," }
            );
            len(out, 1 + head.len() + member.len() + rest.len());
            out.push(1);
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(member.as_bytes());
            out.extend_from_slice(rest.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// Splits one binary row into its fields (`None` for NULL).
    fn fields(row: &[u8]) -> Vec<Option<Vec<u8>>> {
        let n = i16::from_be_bytes([row[0], row[1]]) as usize;
        let mut at = 2;
        let mut out = Vec::new();
        for _ in 0..n {
            let l = i32::from_be_bytes(row[at..at + 4].try_into().unwrap());
            at += 4;
            if l < 0 {
                out.push(None);
            } else {
                out.push(Some(row[at..at + l as usize].to_vec()));
                at += l as usize;
            }
        }
        assert_eq!(at, row.len(), "trailing bytes");
        out
    }

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
