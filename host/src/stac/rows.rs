//! Items and collections as COPY text rows, in the column order of
//! [`super::store`]'s tables: `[seq,] collection, id, geometry, bbox,
//! datetime, start_datetime, end_datetime, content` for items and
//! `[seq,] id, content` for collections.

use crate::copy::text::encode_into;

use super::ItemFields;
use super::time::write_timestamptz;

/// Appends one item row. `seq` is the record's position in the load (for
/// "last one wins" among duplicates); `None` leaves the column out.
pub fn write_item(out: &mut Vec<u8>, seq: Option<u64>, f: &ItemFields<'_>, content: &str) {
    if let Some(seq) = seq {
        out.extend_from_slice(seq.to_string().as_bytes());
        out.push(b'\t');
    }
    encode_into(out, Some(f.collection.as_bytes()));
    out.push(b'\t');
    encode_into(out, Some(f.id.as_bytes()));
    out.push(b'\t');
    match &f.geometry {
        Some(g) => write_hex(out, &g.ewkb),
        None => out.extend_from_slice(b"\\N"),
    }
    out.push(b'\t');
    match &f.bbox {
        Some(b) => {
            out.push(b'{');
            for (i, v) in b.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Rust prints the shortest text that reads back as the same f64.
                out.extend_from_slice(v.to_string().as_bytes());
            }
            out.push(b'}');
        }
        None => out.extend_from_slice(b"\\N"),
    }
    out.push(b'\t');
    match f.datetime {
        Some(t) => write_timestamptz(out, t),
        None => out.extend_from_slice(b"\\N"),
    }
    out.push(b'\t');
    write_timestamptz(out, f.start);
    out.push(b'\t');
    write_timestamptz(out, f.end);
    out.push(b'\t');
    write_content(out, content, f.collection_missing.then_some(&f.collection));
    out.push(b'\n');
}

/// Appends one collection row.
pub fn write_collection(out: &mut Vec<u8>, seq: Option<u64>, id: &str, content: &str) {
    if let Some(seq) = seq {
        out.extend_from_slice(seq.to_string().as_bytes());
        out.push(b'\t');
    }
    encode_into(out, Some(id.as_bytes()));
    out.push(b'\t');
    write_content(out, content, None);
    out.push(b'\n');
}

/// The JSON text, escaped for COPY; with `add_collection`, a `"collection"`
/// member is put first (the rest of the text is untouched).
fn write_content(out: &mut Vec<u8>, content: &str, add_collection: Option<&str>) {
    match add_collection {
        None => encode_into(out, Some(content.as_bytes())),
        Some(c) => {
            let open = content.find('{').expect("a checked object starts with {");
            let (head, rest) = content.split_at(open + 1);
            let empty = rest.trim_start().starts_with('}');
            let member = format!(
                "\"collection\":{}{}",
                serde_json::Value::from(c),
                if empty { "" } else { "," }
            );
            encode_into(out, Some(head.as_bytes()));
            encode_into(out, Some(member.as_bytes()));
            encode_into(out, Some(rest.as_bytes()));
        }
    }
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn item_row_escapes_content_and_adds_the_collection() {
        let f = ItemFields {
            collection: Cow::Borrowed("c\t1"),
            id: Cow::Borrowed("a"),
            collection_missing: true,
            geometry: None,
            bbox: Some(vec![1.5, -2.0, 3.0, 4.25]),
            datetime: None,
            start: 0,
            end: 1,
        };
        let mut out = Vec::new();
        write_item(&mut out, Some(7), &f, "{\n \"id\":\"a\\\\b\"}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7\tc\\t1\ta\t\\N\t{1.5,-2,3,4.25}\t\\N\t1970-01-01 00:00:00+00\t1970-01-01 00:00:00.000001+00\t\
             {\"collection\":\"c\\\\t1\",\\n \"id\":\"a\\\\\\\\b\"}\n"
        );
    }
}
