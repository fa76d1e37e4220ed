//! PostgreSQL COPY text format: rows end with `\n`, fields are separated by
//! `\t`, NULL is `\N`, and `\\`, `\t`, `\n`, `\r` (plus `\b`, `\f`, `\v` and
//! octal/hex escapes on input) are backslash escapes.

use std::borrow::Cow;

/// Byte offsets where each row of a COPY text buffer ends (exclusive of `\n`).
/// A raw newline always ends a row: newlines inside values are escaped.
pub fn row_ends(buf: &[u8]) -> Vec<usize> {
    memchr::memchr_iter(b'\n', buf).collect()
}

/// Iterates over the rows of a buffer (without their `\n`).
pub fn rows(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', buf).map(move |end| {
        let row = &buf[start..end];
        start = end + 1;
        row
    })
}

/// Number of fields in one row (without its `\n`).
pub fn field_count(row: &[u8]) -> usize {
    memchr::memchr_iter(b'\t', row).count() + 1
}

/// Splits a row into raw (still escaped) fields.
pub fn raw_fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    row.split(|&b| b == b'\t')
}

/// Decodes one raw field: `None` for NULL.
pub fn decode(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if raw == b"\\N" {
        return None;
    }
    if memchr::memchr(b'\\', raw).is_none() {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    out.push(b'x');
                } else {
                    out.push(v as u8);
                }
            }
            other => out.push(other),
        }
    }
    Some(Cow::Owned(out))
}

/// Appends one field, escaped; `None` writes NULL.
pub fn encode_into(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(v) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Appends a whole row of fields, with its `\n`.
pub fn encode_row<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a [u8]>>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        encode_into(out, f);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_escapes_and_null() {
        let values: Vec<Option<&[u8]>> = vec![
            Some(b"a\tb"),
            None,
            Some(b""),
            Some(b"x\\y\nz\r"),
            Some(b"\\N"),
        ];
        let mut buf = Vec::new();
        encode_row(&mut buf, values.iter().copied());
        assert_eq!(buf, b"a\\tb\t\\N\t\tx\\\\y\\nz\\r\t\\\\N\n");
        let row = rows(&buf).next().unwrap();
        let decoded: Vec<Option<Vec<u8>>> = raw_fields(row)
            .map(|f| decode(f).map(|c| c.into_owned()))
            .collect();
        let expected: Vec<Option<Vec<u8>>> = values.iter().map(|v| v.map(|s| s.to_vec())).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn decodes_octal_and_hex_escapes() {
        assert_eq!(decode(b"\\101\\x42\\v").unwrap().as_ref(), b"AB\x0b");
    }

    #[test]
    fn rows_and_fields_are_counted() {
        let buf = b"a\tb\n\\N\tc\n";
        assert_eq!(row_ends(buf), vec![3, 8]);
        assert_eq!(rows(buf).map(field_count).collect::<Vec<_>>(), vec![2, 2]);
    }
}
